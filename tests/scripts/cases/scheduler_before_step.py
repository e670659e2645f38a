# scheduler.step() before optimizer.step(): the classic mistake (torch warns; the lr sequence shifts)
import torch

w = torch.tensor([4.0], requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.5)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
for i in range(6):
    optimizer.zero_grad()
    (w ** 2).sum().backward()
    scheduler.step()
    print(i, optimizer.param_groups[0]["lr"], end=" ")
    optimizer.step()
    print(w.item())
