"""The textbook 64x64 DCGAN of pytorch/examples (dcgan/main.py), shared by the benchmarks.

As written there: ImageFolder with a per-step JPEG decode (Resize, CenterCrop, ToTensor, Normalize)
through a DataLoader with 2 workers, ngf = ndf = 64, nz = 100, weights drawn from N(0, 0.02) (BatchNorm
scales from N(1, 0.02)), BCE on sigmoid outputs, Adam(2e-4, betas 0.5/0.999), batch 64, one
discriminator and one generator step per batch, the generator step reusing the batch's fakes. Images
are 64 px only (the networks are fixed to it).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
import torch.nn as nn
from torchvision import datasets, transforms

BATCH = 64
NZ = 100
IMAGE_SIZE = 64
LR = 2e-4
BETAS = (0.5, 0.999)
WORKERS = 2


def weights_init(module: nn.Module) -> None:
    """The textbook initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and bias 0."""
    name = module.__class__.__name__
    if "Conv" in name:
        nn.init.normal_(module.weight.data, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight.data, 1.0, 0.02)
        nn.init.constant_(module.bias.data, 0)


def reference_networks(nz: int = NZ, ngf: int = 64, ndf: int = 64) -> tuple[nn.Module, nn.Module]:
    """The textbook DCGAN generator and discriminator (pytorch/examples dcgan), initialised as there."""
    generator = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )
    generator.apply(weights_init)
    discriminator.apply(weights_init)
    return generator, discriminator


def reference_dataset(train_dir: Path, paths: Iterable[Path] | None = None) -> torch.utils.data.Dataset:
    """ImageFolder over ``train_dir`` with the textbook transform; only ``paths`` when given."""
    data = datasets.ImageFolder(
        str(train_dir),
        transforms.Compose([
            transforms.Resize(IMAGE_SIZE), transforms.CenterCrop(IMAGE_SIZE), transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]),
    )
    if paths is None:
        return data
    wanted = {str(Path(p).resolve()) for p in paths}
    indices = [i for i, (path, _) in enumerate(data.samples) if str(Path(path).resolve()) in wanted]
    if len(indices) != len(wanted):
        raise ValueError(f"{len(wanted) - len(indices)} of the requested photos are not in {train_dir}")
    return torch.utils.data.Subset(data, indices)


def reference_loader(dataset: torch.utils.data.Dataset, workers: int = WORKERS) -> torch.utils.data.DataLoader:
    """The textbook DataLoader (shuffled, batch 64, 2 workers); drop_last keeps every step at batch 64."""
    if len(dataset) < BATCH:
        raise ValueError(f"the reference loop needs at least {BATCH} photos (one batch), got {len(dataset)}")
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True)


def endless(loader: Iterable) -> Iterator:
    """Batches of ``loader``, epoch after epoch (a fresh iterator, and so fresh workers, per epoch)."""
    while True:
        yield from loader


class ReferenceDCGAN:
    """Networks, optimisers and the training step of the textbook loop. Seed torch before building it."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        # As pytorch/examples does with --cuda: networks and each batch on the device, noise drawn there.
        self.device = torch.device(device)
        self.generator, self.discriminator = (net.to(self.device) for net in reference_networks())
        self.criterion = nn.BCELoss()
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=LR, betas=BETAS)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=LR, betas=BETAS)
        self.step = 0

    def train_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """One discriminator and one generator update on a batch of real images in [-1, 1]."""
        netG, netD, criterion = self.generator, self.discriminator, self.criterion
        real = real.to(self.device, non_blocking=True)
        netD.zero_grad()
        out = netD(real).view(-1)
        errD_real = criterion(out, torch.ones_like(out))
        errD_real.backward()
        fake = netG(torch.randn(len(real), NZ, 1, 1, device=self.device))
        out = netD(fake.detach()).view(-1)
        errD_fake = criterion(out, torch.zeros_like(out))
        errD_fake.backward()
        self.opt_d.step()
        netG.zero_grad()
        out = netD(fake).view(-1)
        errG = criterion(out, torch.ones_like(out))
        errG.backward()
        self.opt_g.step()
        self.step += 1
        return {"d_loss": (errD_real + errD_fake).detach(), "g_loss": errG.detach()}

    def fit(
        self,
        loader: Iterable,
        *,
        max_seconds: float,
        callback: Callable[[int, dict[str, float]], None] | None = None,
        log_every: int = 10,
    ) -> dict:
        """Train until ``max_seconds`` of wall clock would be exceeded (the rule of mlcore's ``fit``: stop
        before a step that would likely overrun). The clock includes the loader's decoding and worker start-up.
        Returns ``steps_done``, ``step``, ``seconds``, ``images_per_second``, ``stopped`` and ``losses``."""
        self.generator.train()
        self.discriminator.train()
        start = time.perf_counter()
        steps_done, sums, count, losses = 0, {}, 0, {}
        batches = endless(loader)
        try:
            while True:
                elapsed = time.perf_counter() - start
                mean_step = elapsed / steps_done if steps_done else 0.0
                if elapsed + mean_step > max_seconds:
                    break
                real, _ = next(batches)
                for key, value in self.train_step(real).items():
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
                steps_done += 1
                if count == log_every:
                    losses = {key: float(total) / count for key, total in sums.items()}
                    sums, count = {}, 0
                    if callback is not None:
                        callback(self.step, losses)
        finally:
            batches.close()  # drops the live loader iterator, which shuts its workers down
        if count:
            losses = {key: float(total) / count for key, total in sums.items()}
        seconds = time.perf_counter() - start
        return {
            "steps_done": steps_done,
            "step": self.step,
            "seconds": seconds,
            "images_per_second": steps_done * BATCH / seconds if seconds > 0 else 0.0,
            "stopped": "time",
            "losses": losses,
        }

    @torch.no_grad()
    def generate(self, count: int, seed: int, chunk: int = BATCH) -> torch.Tensor:
        """``count`` images (N x 3 x 64 x 64 in [-1, 1]) from noise seeded by ``seed``.

        As the textbook draws its sample sheets: the generator stays in training mode, so BatchNorm normalises
        with the statistics of each chunk of 64, as in every training step.
        """
        rng = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(count, NZ, 1, 1, generator=rng)
        self.generator.train()
        return torch.cat([self.generator(noise[i : i + chunk]) for i in range(0, count, chunk)])


def textbook_steps(model: ReferenceDCGAN, batches: Iterator, steps: int) -> None:
    """Run ``steps`` training steps on ``batches`` (an iterator of (images, labels))."""
    for _ in range(steps):
        real, _ = next(batches)
        model.train_step(real)
