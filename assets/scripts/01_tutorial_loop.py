# The tutorial loop: w * x + b
#
# The loop every PyTorch tutorial starts with: one example (x = 2, y = 4), a prediction w * x + b,
# the mean squared error, and plain SGD. Watch the four lines of the loop light up in turn:
# zero_grad() clears .grad, the forward line builds the graph, backward() sends the gradient back
# to w and b (w gets x times what b gets), and step() moves both against their gradients, along the
# direction (2, 1). With lr = 0.1 the first step lands exactly on the line 2w + b = 4, at w = 1.8,
# b = 0.4: from then on the loss and both gradients are 0 and nothing moves.
import torch

w = torch.tensor([1.0], requires_grad=True)
b = torch.tensor([0.0], requires_grad=True)
x = torch.tensor([2.0])
y_true = torch.tensor([4.0])
loss_fn = torch.nn.MSELoss()
optimizer = torch.optim.SGD([w, b], lr=0.1)

for i in range(100):
    y_pred = w * x + b
    loss = loss_fn(y_pred, y_true)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if i < 3:
        print(f"iteration {i}: loss {loss.item():.4f}, w.grad {w.grad.item():.1f}, b.grad {b.grad.item():.1f}")

print("w = ", w)
print("b = ", b)
print("loss = ", loss.item())

# --- the guided tour (Next / Back in the Lesson panel; see docs/scripts.md) ---
# tour: iteration=0 phase=loss event=forward node=MseLossBackward0 plot=Loss
#   y_pred = w * x + b = 1·2 + 0 = 2, and loss_fn(y_pred, y_true) = (2 − 4)² = 4.0: the first
#   point of the Loss plot.
# tour: iteration=0 event=zero_grad
#   zero_grad() runs after the forward line here, and that is fine: it only has to come before
#   backward(). .grad of w and b is None.
# tour: iteration=0 event=accumulate node=w plot=Gradients
#   loss.backward(): ∂loss/∂y_pred = 2·(2 − 4) = −4 reaches b unchanged (b.grad = −4) and reaches
#   w multiplied by x = 2: w.grad = −8.
# tour: iteration=0 event=step node=w plot=Parameters
#   optimizer.step(): w = 1 − 0.1·(−8) = 1.8 and b = 0 − 0.1·(−4) = 0.4, so 2w + b = 4: from
#   iteration 1 on the loss and every gradient are 0 and nothing moves.
