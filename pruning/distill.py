"""Knowledge distillation from a dense fine-tuned teacher while pruning (Hinton et al. 2015).

``loss = (1 - alpha) * CE(student, labels) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))``
``       + hidden_weight * mean_layers MSE(student hidden states, teacher hidden states)`` (optional)

The ``T^2`` factor keeps the soft-target gradients on the scale of the hard-label ones (their magnitude
falls as ``1/T^2``). :class:`DistillationModel` wraps the student so that a *plain* HF ``Trainer`` trains
with this loss (no Trainer subclass): its forward runs the student, and in training mode also the frozen
teacher. The student is the wrapped module ``.student``; prune, evaluate and save that one.

>>> s = torch.tensor([[2.0, 0.0]]); t = torch.tensor([[0.0, 2.0]])
>>> round(float(distillation_loss(s, t, temperature=1.0)), 4)  # KL of two 2-way softmaxes, by hand: 1.5232
1.5232
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DistillationModel", "distillation_loss"]


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, averaged over the batch."""
    log_student = torch.log_softmax(student_logits / temperature, dim=-1)
    log_teacher = torch.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    kl = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=-1).mean()
    return kl * temperature**2


class DistillationModel(nn.Module):
    """A student whose training loss mixes the labels' cross-entropy with the teacher's soft targets.

    The teacher is frozen (no gradients, eval mode) and moves with the wrapper, so ``Trainer`` puts both on
    the training device; the optimizer only sees the student's parameters (HF skips ``requires_grad=False``).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, alpha: float = 0.5, temperature: float = 2.0,
                 hidden_weight: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        if not (isinstance(alpha, int | float) and 0 <= alpha <= 1):
            raise ValueError(f"distill_alpha: must be in [0, 1], got {alpha!r}")
        if not (isinstance(temperature, int | float) and 0 < temperature <= 100):
            raise ValueError(f"distill_temperature: must be in (0, 100], got {temperature!r}")
        if not (isinstance(hidden_weight, int | float) and 0 <= hidden_weight <= 1000):
            raise ValueError(f"distill_hidden_weight: must be in [0, 1000], got {hidden_weight!r}")
        self.student, self.teacher = student, teacher
        self.alpha, self.temperature, self.hidden_weight = float(alpha), float(temperature), float(hidden_weight)
        self.teacher.eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.config = student.config  # Trainer reads the model config (e.g. for label names)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher's dropout stays off
        return self

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        # named arguments: the Trainer keeps only the batch columns that appear in this signature
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **kwargs}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.hidden_weight > 0 and self.training and labels is not None
        outputs = self.student(**inputs, labels=labels, output_hidden_states=hidden or None)
        if labels is None or not self.training or (self.alpha == 0 and not hidden):
            return outputs
        with torch.no_grad():
            teacher_out = self.teacher(**inputs, output_hidden_states=hidden or None)
        loss = outputs.loss
        if self.alpha > 0:
            kd = distillation_loss(outputs.logits, teacher_out.logits, self.temperature)
            loss = (1 - self.alpha) * loss + self.alpha * kd
        if hidden:  # every layer's output (embeddings included), same shapes: student and teacher share the config
            pairs = list(zip(outputs.hidden_states, teacher_out.hidden_states, strict=True))
            loss = loss + self.hidden_weight * sum(nn.functional.mse_loss(s, t) for s, t in pairs) / len(pairs)
        outputs.loss = loss
        return outputs
