# set_grad_enabled (context manager and function), no_grad, enable_grad, inference results
import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
print(torch.is_grad_enabled())
with torch.set_grad_enabled(False):
    y = w * 2
    print(torch.is_grad_enabled(), y.requires_grad, y.grad_fn)
with torch.set_grad_enabled(True):
    y = w * 2
    print(y.requires_grad, str(y.grad_fn).split()[0])
torch.set_grad_enabled(False)
print(torch.is_grad_enabled(), (w + 1).requires_grad)
torch.set_grad_enabled(True)
with torch.no_grad():
    with torch.enable_grad():
        z = (w ** 2).sum()
    print(z.requires_grad)
z.backward()
print(w.grad)
is_train = False
with torch.set_grad_enabled(is_train):
    out = w.sum()
print(out.requires_grad, torch.is_grad_enabled())
