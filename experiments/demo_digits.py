"""Train the same MLP on sklearn's digits with SaLSa (no learning rate) and with Adam (lr 1e-3); print both."""
import time

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from salsa import ClosureOptimizer, SaLSa

EPOCHS, BATCH = 10, 64


def train(make_optimizer, x, y, x_test, y_test):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = make_optimizer(model)
    start = time.perf_counter()
    for _ in range(EPOCHS):
        for index in torch.randperm(len(x)).split(BATCH):
            opt.step(lambda: nn.functional.cross_entropy(model(x[index]), y[index]))
    with torch.no_grad():
        train_loss = nn.functional.cross_entropy(model(x), y).item()
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return train_loss, accuracy, time.perf_counter() - start, opt


def main():
    features, labels = load_digits(return_X_y=True)
    x, x_test, y, y_test = train_test_split(features / 16.0, labels, test_size=0.2, random_state=0)
    x, x_test = (torch.tensor(a, dtype=torch.float32) for a in (x, x_test))
    y, y_test = torch.tensor(y), torch.tensor(y_test)
    print(f"sklearn digits: {len(x)} train / {len(x_test)} test images, MLP 64-128-10, {EPOCHS} epochs, batch {BATCH}")
    runs = {
        "SaLSa (no learning rate)": lambda m: SaLSa(m.parameters(), model=m),
        "Adam (lr 1e-3)": lambda m: ClosureOptimizer(torch.optim.Adam(m.parameters(), lr=1e-3)),
    }
    for name, make in runs.items():
        loss, acc, seconds, opt = train(make, x, y, x_test, y_test)
        totals = opt.totals()
        print(f"{name:26s} final train loss {loss:.4f}  test accuracy {acc:.3f}  {seconds:.1f} s  "
              f"step size {opt.step_size:.4g}  forwards/step {totals['forwards'] / totals['steps']:.2f}")


if __name__ == "__main__":
    main()
