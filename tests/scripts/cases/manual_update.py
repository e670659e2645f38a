# Manual updates: -= under no_grad, sub_, copy_, grad.zero_(), grad = None
import torch

w = torch.tensor([0.5, -1.0], requires_grad=True)
b = torch.tensor(0.0, requires_grad=True)
x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.0, 1.0]])
y = torch.tensor([1.0, 2.0, -1.0])
for i in range(30):
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w.sub_(0.05 * w.grad)
        b -= 0.05 * b.grad
    if i % 2 == 0:
        w.grad.zero_()
        b.grad.zero_()
    else:
        w.grad = None
        b.grad = None
print(w, b, loss)
with torch.no_grad():
    w.copy_(torch.tensor([1.0, 1.0]))
    b.mul_(2)
print(w, b, w.grad, w.is_leaf, w.requires_grad)
