"""Each distillation family against a value worked out by hand, and the core without torch."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from stillroom.torchkd import (  # noqa: E402
    AttentionTransferLoss,
    DistillationObjective,
    DKDLoss,
    HintLoss,
    ModelOutputs,
    ResponseLoss,
    RKDLoss,
    born_again,
)


def t(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_response_loss_at_temperature_one() -> None:
    # student uniform, teacher softmax([ln 3, 0]) = [0.75, 0.25], label 0
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # 0.130812
    ce = math.log(2)
    loss = ResponseLoss(temperature=1.0, alpha=0.5)(t([[0.0, 0.0]]), t([[math.log(3), 0.0]]), torch.tensor([0]))
    assert float(loss) == pytest.approx(0.5 * kl + 0.5 * ce, abs=1e-6)


def test_response_loss_temperature_squared_and_unlabelled_rows() -> None:
    # T = 2: teacher softmax([ln 3 / 2, 0]) = [sqrt3, 1] / (sqrt3 + 1); the soft term is scaled by T^2 = 4
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    soft = 4 * (p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))  # 0.145760
    labelled = 0.5 * soft + 0.5 * math.log(2)
    unlabelled = soft  # no label: the teacher alone, weight 1
    s, te = t([[0.0, 0.0], [0.0, 0.0]]), t([[math.log(3), 0.0], [math.log(3), 0.0]])
    loss = ResponseLoss(temperature=2.0, alpha=0.5)(s, te, torch.tensor([0, -1]))
    assert float(loss) == pytest.approx((labelled + unlabelled) / 2, abs=1e-6)


def test_response_loss_without_teacher_is_cross_entropy_and_mixup_labels() -> None:
    s = t([[math.log(3), 0.0]])  # softmax = [0.75, 0.25]
    assert float(ResponseLoss()(s, None, torch.tensor([1]))) == pytest.approx(-math.log(0.25), abs=1e-6)
    mixed = t([[0.5, 0.5]])  # mixup of a class-0 and a class-1 image
    expected = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))
    assert float(ResponseLoss()(s, None, mixed)) == pytest.approx(expected, abs=1e-6)


def test_response_loss_multilabel() -> None:
    # one row, two labels; teacher logit 0 -> p_t 0.5; student logit 0 -> KL 0; label 1 and missing
    s, te = t([[0.0, 0.0]]), t([[0.0, 0.0]])
    loss = ResponseLoss(temperature=1.0, alpha=0.5, multilabel=True)(s, te, t([[1.0, float("nan")]]))
    # soft terms are 0; the hard BCE of the known label is ln 2, weighted (1 - alpha), over 1 known label
    assert float(loss) == pytest.approx(0.5 * math.log(2), abs=1e-6)


def test_hint_loss_with_a_fixed_adapter() -> None:
    loss = HintLoss(student_channels=1, teacher_channels=1)
    with torch.no_grad():
        loss.adapter.weight.fill_(2.0)
    f_s = t([[[[1.0, 2.0], [3.0, 4.0]]]])  # adapted: 2, 4, 6, 8
    assert loss(f_s, torch.ones(1, 1, 2, 2)).item() == pytest.approx((1 + 9 + 25 + 49) / 4)
    # teacher map 1x1: the adapted map is average-pooled to it: mean 5, (5 - 1)^2
    assert loss(f_s, torch.ones(1, 1, 1, 1)).item() == pytest.approx(16.0)
    assert loss.adapter.weight.requires_grad


def test_rkd_distance_is_scale_invariant_and_matches_hand_value() -> None:
    triangle = t([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    rkd = RKDLoss(distance_weight=1.0, angle_weight=0.0)
    assert float(rkd(triangle, 2 * triangle)) == pytest.approx(0.0, abs=1e-7)
    line = t([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    s = [3 / (2 + math.sqrt(2)), 3 / (2 + math.sqrt(2)), 3 * math.sqrt(2) / (2 + math.sqrt(2))]
    d = [a - b for a, b in zip(s, [0.75, 1.5, 0.75], strict=True)]  # teacher distances 1, 2, 1 over mean 4/3
    assert float(rkd(triangle, line)) == pytest.approx(sum(0.5 * x * x for x in d) / 3, abs=1e-6)


def test_rkd_angle_matches_hand_value() -> None:
    # right triangle vs collinear points: the 27 triplet cosines differ in 6 places,
    # by 1, 1 (smooth L1 0.5 each), 1 + 1/sqrt2 twice (|x| - 0.5) and 1 - 1/sqrt2 twice (x^2 / 2): sum 3.5
    triangle = t([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    line = t([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    rkd = RKDLoss(distance_weight=0.0, angle_weight=1.0)
    assert float(rkd(triangle, line)) == pytest.approx(3.5 / 27, abs=1e-6)


def test_attention_transfer_hand_value() -> None:
    student = [t([[[[1.0, 0.0], [0.0, 0.0]]]])]  # map [1, 0, 0, 0]
    teacher = [torch.cat([torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)], dim=1)]  # map [.5, .5, .5, .5]
    assert float(AttentionTransferLoss()(student, teacher)) == pytest.approx(0.25, abs=1e-7)
    with pytest.raises(ValueError, match="pairs stages"):
        AttentionTransferLoss()(student, teacher * 2)


def test_dkd_hand_values() -> None:
    s, te = t([[0.0, 0.0, 0.0]]), t([[math.log(2), 0.0, 0.0]])  # p_s = 1/3 each, p_t = [.5, .25, .25]
    # target 0: TCKD = KL([.5, .5] || [1/3, 2/3]); the non-target parts agree ([.5, .5]): NCKD = 0
    tckd0 = 0.5 * math.log(1.5) + 0.5 * math.log(0.75)
    assert float(DKDLoss(alpha=1.0, beta=8.0, temperature=1.0)(s, te, torch.tensor([0]))) == pytest.approx(tckd0, abs=1e-6)
    # target 1: TCKD = KL([.25, .75] || [1/3, 2/3]); NCKD = KL([2/3, 1/3] || [.5, .5])
    tckd1 = 0.25 * math.log(0.75) + 0.75 * math.log(0.75 / (2 / 3))
    nckd1 = (2 / 3) * math.log(4 / 3) + (1 / 3) * math.log(2 / 3)
    value = DKDLoss(alpha=1.0, beta=8.0, temperature=1.0)(s, te, torch.tensor([1]))
    assert float(value) == pytest.approx(tckd1 + 8 * nckd1, abs=1e-6)
    # no label: the teacher's top class (0) is the target
    assert float(DKDLoss(temperature=1.0)(s, te, torch.tensor([-1]))) == pytest.approx(tckd0, abs=1e-6)


def test_born_again_each_generation_is_taught_by_the_previous() -> None:
    seen = []

    def fit(teacher: object, generation: int) -> str:
        seen.append((teacher, generation))
        return f"student-{generation}"

    assert born_again(fit, "teacher", 3) == ["student-0", "student-1", "student-2"]
    assert seen == [("teacher", 0), ("student-0", 1), ("student-1", 2)]
    with pytest.raises(ValueError):
        born_again(fit, "teacher", 0)


def _outputs(seed: int, channels: list[int]) -> ModelOutputs:
    g = torch.Generator().manual_seed(seed)
    return ModelOutputs(
        logits=torch.randn(6, 3, generator=g),
        features=[torch.randn(6, c, 4, 4, generator=g) for c in channels],
        embedding=torch.randn(6, channels[-1], generator=g),
    )


def test_objective_sums_the_selected_families() -> None:
    s, te = _outputs(0, [2, 3]), _outputs(1, [4, 5])
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    objective = DistillationObjective(
        {"response": 1.0, "relation": 0.5, "attention": 2.0, "dkd": 1.0, "hints": 1.0},
        temperature=2.0,
        student_channels=[2, 3],
        teacher_channels=[4, 5],
        hint_stage=0,
    )
    loss, parts = objective(s, te, labels)
    assert set(parts) == {"response", "relation", "attention", "dkd", "hints"}
    assert loss.item() == pytest.approx(sum(parts.values()), rel=1e-5)
    assert parts["relation"] == pytest.approx(0.5 * float(RKDLoss()(s.embedding, te.embedding)), rel=1e-5)
    assert objective.needs_teacher_features
    baseline, only = objective(s, None, labels)
    assert set(only) == {"hard"} and float(baseline) > 0
    with pytest.raises(ValueError, match="unknown distillation family"):
        DistillationObjective({"magic": 1.0})
    with pytest.raises(ValueError, match="multilabel"):
        DistillationObjective({"dkd": 1.0}, multilabel=True)


def test_core_imports_and_builds_without_torch() -> None:
    # torch made unimportable: the core and its pipeline must import regardless
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (blocked)')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import stillroom, stillroom.api, stillroom.distillation.pipeline, stillroom.cli\n"
        "import stillroom.plugins, stillroom.tasks.targets, stillroom.contract\n"
        "try:\n    import stillroom.torchkd\nexcept ImportError:\n    print('torchkd-needs-torch')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torchkd-needs-torch" in out.stdout
