# A model as an nn.Module: LinearRegression
#
# The same straight-line fit written the way larger models are: a class that subclasses nn.Module,
# creates an nn.Linear(1, 1) in __init__ and calls it in forward(). The parameters are the
# Linear's weight and bias, found by model.parameters() and named linear.weight and linear.bias.
# Watch the forward line expand into the Linear's matmul and add, and the state_dict printed at
# the end: the weight approaches 3 and the bias -1.
import torch
import torch.nn as nn


class LinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        return self.linear(x)


torch.manual_seed(42)
x = torch.arange(0, 10, dtype=torch.float32).reshape(-1, 1) / 10
y = 3 * x - 1

model = LinearRegression()
criterion = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

for epoch in range(60):
    optimizer.zero_grad()
    outputs = model(x)
    loss = criterion(outputs, y)
    loss.backward()
    optimizer.step()
    if (epoch + 1) % 20 == 0:
        print(f"Epoch [{epoch + 1}/60], Loss: {loss.item():.6f}")

print(model.state_dict())
