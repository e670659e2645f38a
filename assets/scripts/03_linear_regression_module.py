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

# --- the guided tour (Next / Back in the Lesson panel; see docs/scenarios.md) ---
# tour: iteration=0 phase=forward event=forward node=AddmmBackward0
#   model(x) calls forward(), which calls self.linear(x): one AddmmBackward0 node, x @
#   linear.weightᵀ + linear.bias, for all 10 points at once.
# tour: iteration=0 phase=loss event=forward node=MseLossBackward0 plot=Loss
#   The Linear starts at weight 0.7645, bias 0.83 (nn.Linear's init after manual_seed(42)); the
#   line 3x − 1 is far away: the MSE is 1.091.
# tour: iteration=0 event=accumulate node=linear.weight plot=Gradients
#   backward() sends the gradient to the Module's parameters, named as model.named_parameters()
#   names them: linear.bias.grad = 1.648, linear.weight.grad = 0.3728.
# tour: iteration=0 event=step node=linear.bias plot=Parameters
#   SGD with lr = 0.5: linear.bias 0.83 → 0.006, linear.weight 0.7645 → 0.5781. After 60 epochs
#   the state_dict printed at the end holds weight 2.9625 and bias −0.9819.
