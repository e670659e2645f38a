# Gradient accumulation with `(batch_idx + 1) % accum_iter == 0 or batch_idx + 1 == len(loader)`
import torch
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(3)
x = torch.randn(10, 2)
y = x @ torch.tensor([[1.5], [-2.0]]) + 0.5
loader = DataLoader(TensorDataset(x, y), batch_size=3)       # 4 batches: 3, 3, 3, 1
model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
accum_iter = 3

for epoch in range(5):
    for batch_idx, (inputs, targets) in enumerate(loader):
        with torch.set_grad_enabled(True):
            loss = torch.nn.functional.mse_loss(model(inputs), targets) / accum_iter
            loss.backward()
        if (batch_idx + 1) % accum_iter == 0 or batch_idx + 1 == len(loader):
            print(epoch, batch_idx, model.weight.grad, model.bias.grad)
            optimizer.step()
            optimizer.zero_grad()
print(model.weight, model.bias)
