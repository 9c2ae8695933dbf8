"""The lesson as one plain script: the same work as the pipeline, with none of its machinery.

The baseline for bench/pipeline.py: data, split, 100 epochs, evaluate, both plots, save.
Usage: python bench/lesson.py OUTDIR
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import nn

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)

weight, bias = 0.7, 0.3
X = torch.arange(0, 1, 0.02).unsqueeze(dim=1)
y = weight * X + bias
train_split = int(0.8 * len(X))
X_train, y_train = X[:train_split], y[:train_split]
X_test, y_test = X[train_split:], y[train_split:]


class LinearRegressionModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(1))
        self.bias = nn.Parameter(torch.randn(1))

    def forward(self, x):
        return self.weights * x + self.bias


torch.manual_seed(42)
model = LinearRegressionModel()
loss_fn = nn.L1Loss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

train_loss_values, test_loss_values = [], []
for epoch in range(100):
    model.train()
    loss = loss_fn(model(X_train), y_train)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.eval()
    with torch.inference_mode():
        test_loss = loss_fn(model(X_test), y_test)
    train_loss_values.append(loss.item())
    test_loss_values.append(test_loss.item())
    if epoch % 10 == 0:
        print(f"Epoch: {epoch} | MAE Train Loss: {loss} | MAE Test Loss: {test_loss}")

with torch.inference_mode():
    y_preds = model(X_test)
print(f"test MAE: {loss_fn(y_preds, y_test).item()}")

plt.figure(figsize=(10, 7))
plt.scatter(X_train, y_train, c="b", s=4, label="Training data")
plt.scatter(X_test, y_test, c="g", s=4, label="Testing data")
plt.scatter(X_test, y_preds, c="r", s=4, label="Predictions")
plt.legend(prop={"size": 14})
plt.savefig(out / "predictions.png")
plt.close()

plt.plot(range(100), train_loss_values, label="Train loss")
plt.plot(range(100), test_loss_values, label="Test loss")
plt.title("Training and test loss curves")
plt.ylabel("Loss")
plt.xlabel("Epochs")
plt.legend()
plt.savefig(out / "loss_curve.png")

torch.save(model.state_dict(), out / "model.pt")
