# autocast + GradScaler (float16) with unscale_ before clip_grad_norm_, and bfloat16 autocast
import torch

torch.manual_seed(2)
x = torch.randn(8, 3)
y = torch.randn(8, 1)
model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 20, growth_interval=3)
for step in range(12):
    optimizer.zero_grad()
    with torch.autocast("cpu", dtype=torch.float16):
        pred = model(x)
        print(pred.dtype, end=" ")
        loss = torch.nn.functional.mse_loss(pred.float(), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    scaler.step(optimizer)
    scaler.update()
    print(step, scaler.get_scale(), norm.item())

with torch.autocast("cpu"):                     # bfloat16 on the cpu
    out = model(x)
print(out.dtype, out[:2])
