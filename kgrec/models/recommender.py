"""The full model: shared encoder, one link-prediction head per domain, the
KG scoring relations, and an optional domain discriminator."""
from __future__ import annotations

from torch import Tensor, nn

from kgrec.models.encoder import Encoder, ModelConfig
from kgrec.models.graph import RelationalGraph
from kgrec.models.heads import make_head


class TransferModel(nn.Module):
    """Encoder + ``heads["source"]`` / ``heads["target"]`` + ``kg_relations`` ``[R, out_dim]``
    (the KG loss's relation vectors) + ``discriminator`` (``None`` unless adversarial
    alignment is on).

    The same class serves transfer and target-only training: only the graph it
    runs on and the losses it is trained with differ.
    """

    def __init__(self, sizes: dict[str, int], num_relations: int, config: ModelConfig,
                 features: dict[str, Tensor] | None = None, discriminator: bool = False):
        super().__init__()
        self.config = config
        self.encoder = Encoder(sizes, num_relations, config, features)
        d = self.encoder.out_dim
        self.heads = nn.ModuleDict({"source": make_head(config.head, d), "target": make_head(config.head, d)})
        self.kg_relations = nn.Embedding(num_relations, d)
        nn.init.normal_(self.kg_relations.weight, std=0.1)
        self.discriminator = (nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1)) if discriminator else None)

    def forward(self, graph: RelationalGraph) -> Tensor:
        """Embeddings of every node, ``[N, out_dim]``."""
        return self.encoder(graph).h
