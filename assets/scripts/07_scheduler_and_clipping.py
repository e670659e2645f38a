# A learning-rate schedule and gradient clipping
#
# A small network trained with a learning rate that StepLR divides by 10 every 20 steps, and with
# torch.nn.utils.clip_grad_norm_ limiting the gradient's total norm to 1 before each step. Watch
# the first steps: the gradient norm is larger than 1, so clipping scales every gradient down by
# the same factor; later the norm falls below 1 and clipping leaves it alone. scheduler.step()
# comes after optimizer.step(), the order PyTorch expects.
#
# run: StepLR + clip_grad_norm_
import torch
import torch.nn as nn

torch.manual_seed(0)
x = torch.linspace(-2, 2, 24).reshape(-1, 1)
y = x ** 3 / 4 - x

model = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=20, gamma=0.1)

for step in range(60):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    scheduler.step()
    if step % 10 == 0:
        lr = scheduler.get_last_lr()[0]
        print(f"step {step:2d}  loss {loss.item():.4f}  grad norm {norm.item():.3f}  lr {lr:.4f}")

# --- the guided tour (Next / Back in the Lesson panel; see docs/scenarios.md) ---
# tour: iteration=0 event=clip plot="LR and clipping"
#   The first gradient is large: clip_grad_norm_ measures ‖g‖ = 3.65 over all parameters together,
#   more than max_norm = 1, and multiplies every .grad by 1/3.65 = 0.274.
# tour: iteration=0 event=scheduler
#   scheduler.step() after optimizer.step(), the order PyTorch expects. StepLR keeps lr = 0.3 for
#   20 steps.
# tour: iteration=19 event=scheduler plot="LR and clipping"
#   After the 20th step StepLR divides the learning rate by 10: lr 0.3 → 0.03 (and again at step
#   40, to 0.003).
# tour: iteration=20 event=clip
#   By now ‖g‖ = 0.932 ≤ 1: clipping leaves the gradients alone. The loss has fallen from 1.034 to
#   0.167.
