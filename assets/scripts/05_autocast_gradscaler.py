# Mixed precision: autocast and GradScaler with Adam
#
# The forward pass runs under autocast in float16 while the weights stay float32, and a
# GradScaler multiplies the loss by a large scale before backward() so that small float16
# gradients do not flush to 0. Watch the scale: the first steps overflow (a gradient becomes inf),
# scaler.step() skips optimizer.step() and scaler.update() halves the scale; once it fits, Adam
# steps as usual on the unscaled gradients.
#
# run: float16 autocast + GradScaler
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
x = torch.randn(16, 4, device=device)
y = x.sum(dim=1, keepdim=True)

model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(device)
loss_fn = torch.nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
scaler = torch.amp.GradScaler(device, init_scale=2.0 ** 24)

for step in range(30):
    optimizer.zero_grad()
    with torch.autocast(device_type=device, dtype=torch.float16):
        pred = model(x)
        loss = loss_fn(pred, y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    if step % 5 == 0:
        print(f"step {step:2d}  loss {loss.item():.4f}  scale {scaler.get_scale():.0f}")

# --- the guided tour (Next / Back in the Lesson panel; see docs/scenarios.md) ---
# tour: iteration=0 phase=backward event=forward node=MulBackward0
#   scaler.scale(loss): the float16 loss 4.6501 times the initial scale 2²⁴ = 16777216 is 7.8e7,
#   and backward() starts from there.
# tour: iteration=0 event=accumulate node=2.bias plot=Gradients
#   Gradients 16.8 million times too large overflow float16 (its largest number is 65504): inf,
#   then nan, reach every .grad.
# tour: iteration=0 event=scaler
#   scaler.step(optimizer) finds the inf/nan and skips Adam's step; scaler.update() halves the
#   scale: 16777216 → 8388608.
# tour: iteration=8 event=scaler
#   This repeats for 9 iterations: nothing moves, the loss stays 4.6501, and the scale halves each
#   time, down to 32768 here.
# tour: iteration=9 event=step node=0.weight plot=Loss
#   At scale 32768 nothing overflows: scaler.step() unscales the gradients in float32 and Adam
#   steps (0.weight mean 0.0334 → 0.0284). From iteration 10 the loss falls: 4.5104, 4.3796,
#   4.2566, ...
