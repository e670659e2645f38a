# CrossEntropyLoss + SGD with momentum, weight decay and nesterov; the optimizer's state
import torch
import torch.nn as nn

torch.manual_seed(5)
inputs = torch.randn(12, 4)
labels = torch.randint(0, 3, (12,))
print(labels)
model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)
for epoch in range(40):
    optimizer.zero_grad()
    outputs = model(inputs)
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()
    if epoch % 10 == 0:
        print(epoch, round(loss.item(), 5))
print(optimizer.state[model[2].bias]["momentum_buffer"])
print(criterion(model(inputs), labels))
print(nn.CrossEntropyLoss(reduction="sum")(model(inputs), labels).item())
