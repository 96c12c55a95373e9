"""Where and how a memorisation run collapsed, from its step records (outputs/memorisation/<case>-<opt>-<seed>.npz).

Prints, in windows of 500 steps from the first loss below 1e-3 up to the collapse: the share of steps with a
search, with a loss exactly 0 and with s below 1e-8 (the old default's unchecked branch), the step size range and
the loss; then the 25 steps before the collapse with h, s, c*eta*s and the measured decreases, all also in
units of q = 2^-23 / batch, the float32 spacing of a mean of per-example cross entropies near 0.

    python -m experiments.memorisation.diagnose outputs/memorisation/mlp-superseded_without_resolution-0.npz [--c 0.5]
"""
import argparse

import numpy as np

from experiments.memorisation.cases import BATCH


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace")
    parser.add_argument("--c", type=float, default=0.5)
    args = parser.parse_args()
    a = np.load(args.trace)
    q = 2.0**-23 / BATCH
    loss, eta, s, h, fwd = a["loss"], a["step_size"], a["s"], a["h"], a["forwards"]
    steps = np.arange(len(loss))
    below = int(np.argmax(loss < 1e-3))
    rose = steps[(steps > below) & (loss > 1e-2)]
    end = int(rose[0]) if len(rose) else len(loss)
    print(f"first loss < 1e-3 at step {below}; " + (f"collapse (loss > 1e-2) at step {end}" if len(rose) else "no collapse"))
    for lo in range(below, end, 500):
        w = slice(lo, min(lo + 500, end))
        print(f"steps {lo}-{w.stop}: searches {np.mean(fwd[w] > 1):.2f}, loss == 0 {np.mean(loss[w] == 0):.2f}, "
              f"s < 1e-8 {np.mean(s[w] < 1e-8):.2f}, eta {eta[w].min():.3g}..{eta[w].max():.3g}, "
              f"loss median {np.median(loss[w]):.2e} max {loss[w].max():.2e}")
    for k in range(max(end - 25, 0), min(end + 2, len(loss))):
        print(f"{k}: f={loss[k]:.2e} ({loss[k] / q:.0f} q) eta={eta[k]:.3g} h={h[k]:.2e} s={s[k]:.2e} "
              f"c*eta*s={args.c * eta[k] * s[k]:.2e} forwards={int(fwd[k])} "
              f"decrease first/last trial={a['first_decrease'][k]:.2e}/{a['last_decrease'][k]:.2e}")


if __name__ == "__main__":
    main()
