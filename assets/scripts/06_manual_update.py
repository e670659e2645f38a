# The update written by hand
#
# No optimizer at all: after backward() the loop changes w and b itself, inside torch.no_grad()
# so that the update is not recorded in the graph, and then sets each .grad to None so that the
# next backward() starts from nothing. This is what optimizer.step() and optimizer.zero_grad()
# do for plain SGD. Watch w -= lr * w.grad move the value, and .grad disappear after it.
import torch

x = torch.tensor([1.0, 2.0, 3.0, 4.0])
y = torch.tensor([3.0, 5.0, 7.0, 9.0])
w = torch.tensor(0.0, requires_grad=True)
b = torch.tensor(0.0, requires_grad=True)
lr = 0.02

for i in range(50):
    loss = ((w * x + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= lr * w.grad
        b -= lr * b.grad
    w.grad = None
    b.grad = None
    if i % 10 == 0:
        print(f"iteration {i}: loss {loss.item():.4f}")

print(f"w = {w.item():.4f}, b = {b.item():.4f}")
