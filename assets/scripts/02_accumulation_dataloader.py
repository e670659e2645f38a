# Gradient accumulation on a DataLoader
#
# Twenty points of a noisy line, served by a shuffled DataLoader in batches of 4. Each batch's
# loss is divided by accum_iter and backward() adds its gradient into .grad; only every second
# batch calls optimizer.step() and zero_grad(), so one step sees 8 points. An epoch has 5 batches:
# the last one steps alone, thanks to `batch_idx + 1 == len(data_loader)` (without that test its
# gradient would leak into the next epoch's first step). Watch .grad grow over two backward()
# calls, then drop to None after the step.
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
