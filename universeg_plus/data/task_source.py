"""The call every source of training tasks answers (synthetic shapes, superpixels of unlabelled images)."""

from __future__ import annotations

import torch

__all__ = ["TaskSource"]


class TaskSource:
    """Draws ``num_tasks`` binary tasks of ``num_images`` (image, mask) pairs each.

    Subclasses implement ``_generate(num_tasks, num_images, generator, device, host_generator)``;
    :meth:`__call__` checks the counts and resolves the defaults once for all of them.
    """

    def __call__(
        self,
        num_tasks: int,
        num_images: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        host_generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate ``num_tasks`` tasks of ``num_images`` (image, mask) pairs each.

        Args:
            num_tasks: B, tasks to draw.
            num_images: N, pairs per task.
            generator: Randomness (a fresh unseeded one if ``None``); output device defaults to its device.
            device: Output device.
            host_generator: CPU generator for the few per-call scalars, so a CUDA ``generator`` needs
                no device sync; defaults to ``generator``.

        Returns:
            ``images (B, N, 1, H, W)`` float32 in [0, 1] and ``masks (B, N, 1, H, W)`` float32 in {0, 1}.
        """
        if num_tasks < 1 or num_images < 1:
            raise ValueError(f"num_tasks and num_images must be >= 1, got {num_tasks}, {num_images}")
        g = generator if generator is not None else self._default_generator()
        dev = torch.device(device) if device is not None else g.device
        hg = host_generator if host_generator is not None else g
        return self._generate(num_tasks, num_images, g, dev, hg)

    def _default_generator(self) -> torch.Generator:
        return torch.Generator()

    def _generate(
        self, num_tasks: int, num_images: int, g: torch.Generator, dev: torch.device, hg: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
