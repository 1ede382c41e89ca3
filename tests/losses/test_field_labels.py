import pytest
import torch

from leukoscope.losses import FocalLoss, MalignantCellDrop
from leukoscope.losses.field_labels import keep_mask


def test_the_mask_leaves_out_the_most_benign_looking_malignant_items_and_no_benign_one():
    logits = torch.tensor([[5.0, 0.0], [4.0, 0.0], [3.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    target = torch.tensor([0, 1, 1, 1, 1, 0])  # class 0 Benign
    assert keep_mask(logits, target, 0, 0.5).tolist() == [True, False, False, True, True, True]
    assert keep_mask(logits, target, 0, 0.3).tolist() == [True, False, True, True, True, True]  # 0.3 x 4 rounds down to 1
    assert keep_mask(logits, target, 0, 0.2).all()


def test_the_loss_leaves_items_out_only_in_training_and_as_the_epochs_ramp():
    torch.manual_seed(0)
    logits, target = torch.randn(40, 4), torch.randint(0, 4, (40,))
    plain = FocalLoss(2.0)
    wrapped = MalignantCellDrop(plain, 0, 0.5, ramp_epochs=4)
    assert wrapped(logits, target) == plain(logits, target)  # before set_epoch
    wrapped.set_epoch(2)
    assert wrapped.drop_now == pytest.approx(0.25)
    kept = keep_mask(logits, target, 0, 0.25)
    assert wrapped(logits, target) == plain(logits[kept], target[kept])
    wrapped.set_epoch(9)
    assert wrapped.drop_now == pytest.approx(0.5)
    assert wrapped.eval()(logits, target) == plain(logits, target)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        MalignantCellDrop(plain, 0, 1.0, 4)


def _field_labelled_cells(n: int, normal_share: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D cell features, normal cells about -2 and blasts about +2; benign fields' cells all normal, a share of leukemic fields' too."""
    benign = torch.randn(n, generator=generator) - 2
    normal_in_leukemic = torch.rand(n, generator=generator) < normal_share
    leukemic = torch.randn(n, generator=generator) + torch.where(normal_in_leukemic, -2.0, 2.0)
    return torch.cat([benign, leukemic]).unsqueeze(1), torch.cat([torch.zeros(n), torch.ones(n)]).long()


def _train(loss: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 60) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(1)
    for epoch in range(epochs):
        if isinstance(loss, MalignantCellDrop):
            loss.set_epoch(epoch)
        for batch in torch.randperm(len(y), generator=generator).split(64):
            optimizer.zero_grad()
            loss(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model


def test_leaving_out_leukemic_fields_normal_cells_keeps_normal_cells_benign_and_blasts_malignant():
    """Field labels with 40 % normal cells among the leukemic fields' cells: trained on them all, a normal
    cell is called about 40 % malignant; with 40 % of malignant-labelled crops left out, far less."""
    generator = torch.Generator().manual_seed(0)
    x, y = _field_labelled_cells(600, 0.4, generator)
    plain = _train(FocalLoss(0.0), x, y)
    dropped = _train(MalignantCellDrop(FocalLoss(0.0), 0, 0.4, ramp_epochs=10).train(), x, y)
    normal, blasts = torch.randn(2000, 1, generator=generator) - 2, torch.randn(2000, 1, generator=generator) + 2
    with torch.no_grad():
        p_normal = [torch.softmax(m(normal), 1)[:, 1].mean().item() for m in (plain, dropped)]
        p_blast = [torch.softmax(m(blasts), 1)[:, 1].mean().item() for m in (plain, dropped)]
    assert p_normal[0] > 0.2 and p_normal[1] < p_normal[0] / 3, p_normal
    assert p_blast[1] > 0.9, p_blast
