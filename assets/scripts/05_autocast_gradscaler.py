# Mixed precision: autocast and GradScaler with Adam
#
# The forward pass runs under autocast in float16 while the weights stay float32, and a
# GradScaler multiplies the loss by a large scale before backward() so that small float16
# gradients do not flush to 0. Watch the scale: the first steps overflow (a gradient becomes inf),
# scaler.step() skips optimizer.step() and scaler.update() halves the scale; once it fits, Adam
# steps as usual on the unscaled gradients.
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
