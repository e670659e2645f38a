# A float64 regression printing full-precision losses (equal to the last bit)
# differential: float64
import torch

torch.set_default_dtype(torch.float64)
torch.manual_seed(11)
x = torch.linspace(0, 1, 16).reshape(-1, 1)
y = 0.7 * x ** 2 - 0.2 + 0.01 * torch.randn(16, 1)
model = torch.nn.Sequential(torch.nn.Linear(1, 6), torch.nn.Sigmoid(), torch.nn.Linear(6, 1))
optimizer = torch.optim.RMSprop(model.parameters(), lr=0.01, momentum=0.5)
for step in range(25):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    print(step, repr(loss.item()))
print(model[0].weight.dtype)
