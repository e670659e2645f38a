# DataLoader: shuffle with torch.manual_seed, a generator, drop_last, len()
import torch
from torch.utils.data import DataLoader, TensorDataset

x = torch.arange(10, dtype=torch.float32).reshape(10, 1)
y = torch.arange(10) * 2
dataset = TensorDataset(x, y)
print(len(dataset), dataset[3])

torch.manual_seed(0)
loader = DataLoader(dataset, batch_size=4, shuffle=True)
print(len(loader))
for epoch in range(2):
    for inputs, targets in loader:
        print(epoch, inputs.flatten().tolist(), targets.tolist())

generator = torch.Generator().manual_seed(7)
loader = DataLoader(dataset, batch_size=3, shuffle=True, drop_last=True, generator=generator)
print(len(loader))
for batch in loader:
    print(type(batch).__name__, len(batch), batch[1])

for inputs, targets in DataLoader(dataset, batch_size=6):
    print(inputs.shape, targets)
print(torch.randn(2))           # the global generator after two shuffled epochs
