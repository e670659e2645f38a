# Every scheduler's learning rates, step by step (Python floats: equal to the last bit)
# differential: float64
import torch
from torch.optim import lr_scheduler


def run(make, steps=12):
    w = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    print(type(scheduler).__name__, scheduler.last_epoch, repr(lrs))
    return scheduler


run(lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5))
run(lambda o: lr_scheduler.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.3))
run(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9))
run(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.001))
run(lambda o: lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=4))
run(lambda o: lr_scheduler.LambdaLR(o, lambda epoch: 1 / (epoch + 1)))
s = run(lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=12), steps=11)
print(s.optimizer.param_groups[0]["momentum"])
state = s.state_dict()
print(state["last_epoch"], state["base_lrs"], state["_last_lr"])
