"""IntroDetector: per-step features -> 2-layer BiLSTM -> interval, presence and per-step heads."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class IntroDetector(nn.Module):
    """The seed's BiLSTM with a per-step intro-probability head added.

    Inputs are standardised with training-set statistics kept as buffers, so a checkpoint
    carries everything needed to read raw feature files.
    """

    def __init__(
        self, in_dim: int, hidden: int = 128, layers: int = 2, dropout: float = 0.3
    ) -> None:
        super().__init__()
        self.in_dim, self.hidden, self.layers = in_dim, hidden, layers
        self.register_buffer("in_mean", torch.zeros(in_dim))
        self.register_buffer("in_std", torch.ones(in_dim))
        # A projection first: 545 raw channels -> hidden, with dropout, regularises the LSTM
        # on small training sets.
        self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU())
        self.lstm = nn.LSTM(
            hidden,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.reg_head = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2)
        )
        self.presence_head = nn.Linear(2 * hidden, 1)
        self.step_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, 1))

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-channel input statistics (from the training set)."""
        self.in_mean.copy_(mean)
        self.in_std.copy_(std.clamp_min(1e-3))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """x [B, T, D], lengths [B] -> reg [B, 2] (relative start/end in 0..1),
        presence_logit [B], step_logit [B, T]."""
        t_max = x.shape[1]
        h = self.proj((x - self.in_mean) / self.in_std)  # [B, T, H]
        packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=t_max)  # [B, T, 2H]
        last = torch.cat([h_n[-2], h_n[-1]], dim=1)  # final fwd + bwd states of the top layer
        return {
            "reg": torch.sigmoid(self.reg_head(last)),
            "presence_logit": self.presence_head(last).squeeze(1),
            "step_logit": self.step_head(out).squeeze(2),
        }
