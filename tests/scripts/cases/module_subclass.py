# nn.Module subclasses: nested modules, named_parameters, repr, train/eval, functional calls
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return x + torch.tanh(self.fc(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 4)
        self.block = Block(4)
        self.out = nn.Linear(4, 1, bias=False)

    def forward(self, x):
        return self.out(self.block(F.relu(self.inp(x))))


torch.manual_seed(1)
net = Net()
print(net)
for name, p in net.named_parameters():
    print(name, tuple(p.shape), p.requires_grad)
print(sum(p.numel() for p in net.parameters()))
x = torch.randn(5, 3)
y = torch.randn(5, 1)
optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
net.train()
print(net.training, net.block.training)
for _ in range(20):
    optimizer.zero_grad()
    loss = F.mse_loss(net(x), y)
    loss.backward()
    optimizer.step()
net.eval()
print(net.training, net.block.training)
print(loss.item())
print(net(x))
