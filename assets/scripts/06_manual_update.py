# The update written by hand
#
# No optimizer at all: after backward() the loop changes w and b itself, inside torch.no_grad()
# so that the update is not recorded in the graph, and then sets each .grad to None so that the
# next backward() starts from nothing. This is what optimizer.step() and optimizer.zero_grad()
# do for plain SGD. Watch w -= lr * w.grad move the value, and .grad disappear after it.
#
# run: w -= lr * w.grad by hand
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

# --- the guided tour (Next / Back in the Lesson panel; see docs/scenarios.md) ---
# tour: iteration=0 phase=forward event=forward node=MeanBackward0 plot=Loss
#   The loss written out: ((w * x + b − y) ** 2).mean() with w = b = 0 is (9 + 25 + 49 + 81)/4 =
#   41.0.
# tour: iteration=0 event=accumulate node=w plot=Gradients
#   backward(): w.grad = Σ 2·(w·x + b − y)·x / 4 = −35.0 and b.grad = −12.0.
# tour: iteration=0 event=manual_update node=w plot=Parameters
#   No optimizer: w -= lr * w.grad inside torch.no_grad(), 0 → 0 − 0.02·(−35) = 0.7.
#   torch.no_grad() keeps this update out of the graph.
# tour: iteration=0 event=zero_grad node=w
#   w.grad = None by hand: what optimizer.zero_grad() does. Without it the next backward() would
#   add to −35.
# tour: iteration=1 event=manual_update node=w
#   The next iteration starts from w = 0.7, b = 0.24: the loss is 18.19, w.grad = −23.3, and w
#   moves 0.7 → 1.166. After 50 iterations w = 2.0722, b = 0.7877.
