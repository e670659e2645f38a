# Gradient accumulation on a DataLoader
#
# Twenty points of a noisy line, served by a shuffled DataLoader in batches of 4. Each batch's
# loss is divided by accum_iter and backward() adds its gradient into .grad; only every second
# batch calls optimizer.step() and zero_grad(), so one step sees 8 points. An epoch has 5 batches:
# the last one steps alone, thanks to `batch_idx + 1 == len(data_loader)` (without that test its
# gradient would leak into the next epoch's first step). Watch .grad grow over two backward()
# calls, then drop to None after the step.
#
# run: 2 batches of 4 accumulated, loss ÷ accum_iter
import torch
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.linspace(-1, 1, 20).reshape(20, 1)
y = 2 * x + 1 + 0.1 * torch.randn(20, 1)
data_loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)

model = torch.nn.Linear(1, 1)
criterion = torch.nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
accum_iter = 2

for epoch in range(8):
    with torch.set_grad_enabled(True):
        for batch_idx, (inputs, targets) in enumerate(data_loader):
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            loss = loss / accum_iter
            loss.backward()
            if ((batch_idx + 1) % accum_iter == 0) or (batch_idx + 1 == len(data_loader)):
                optimizer.step()
                optimizer.zero_grad()
    print(f"epoch {epoch}: last batch loss {loss.item() * accum_iter:.4f}")

print("weight:", model.weight.item(), "bias:", model.bias.item())

# --- the guided tour (Next / Back in the Lesson panel; see docs/scenarios.md) ---
# tour: iteration=0 micro_batch=0 event=accumulate node=weight
#   The first batch of 4 points: its loss divided by accum_iter = 2 is 0.3328, and backward() puts
#   its gradient into the empty .grad: weight.grad = −0.184, bias.grad = −0.6549.
# tour: iteration=0 micro_batch=1 event=accumulate node=weight plot=Gradients
#   The second batch: no step and no zero_grad() in between, so backward() adds its gradient:
#   weight.grad = −0.184 + (−0.7805) = −0.9645.
# tour: iteration=0 event=step node=weight plot=Parameters
#   batch_idx + 1 = 2 is a multiple of accum_iter: optimizer.step() moves weight −0.5837 → −0.4873
#   with the gradient of 8 points, and zero_grad() then sets .grad back to None.
# tour: iteration=2 event=accumulate node=weight
#   Iteration 2 is the fifth and last batch of the epoch, alone: `batch_idx + 1 ==
#   len(data_loader)` makes it step after a single backward() (weight.grad = −1.188), so nothing
#   leaks into the next epoch.
