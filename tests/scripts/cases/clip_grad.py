# clip_grad_norm_ (2-norm and inf-norm) and clip_grad_value_ on known gradients
import torch

a = torch.tensor([3.0, -4.0], requires_grad=True)
b = torch.tensor([[1.0, 2.0], [0.5, -0.5]], requires_grad=True)
for norm_type in (2.0, float("inf"), 1.0):
    a.grad = None
    b.grad = None
    ((a * torch.tensor([1.0, 2.0])).sum() + (b ** 2).sum()).backward()
    total = torch.nn.utils.clip_grad_norm_([a, b], max_norm=1.5, norm_type=norm_type)
    print(norm_type, total, a.grad, b.grad)
total = torch.nn.utils.clip_grad_norm_([a, b], max_norm=100.0)     # below the limit: unchanged
print(total, a.grad)
b.grad = torch.tensor([[5.0, -0.1], [-7.0, 0.2]])
torch.nn.utils.clip_grad_value_([b], clip_value=1.0)
print(b.grad)
