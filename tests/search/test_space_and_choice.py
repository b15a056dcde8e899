"""The parts of a search that need no training: the space (hook, user override, validation,
conditional dimensions), the budget grammar, and the choice (front, tie-break, closest trial)."""

from __future__ import annotations

import optuna
import pytest

from stillroom.api import plugin_manager
from stillroom.contract import hookimpl
from stillroom.contract.config import SearchSettings, parse_duration
from stillroom.distillation.pipeline import load_config
from stillroom.errors import ConfigError, PluginError
from stillroom.searching.choice import TrialView, choose, closest, feasible, misses, pareto_front, tie_break_rule
from stillroom.searching.space import decode, default_values, resolve_space, suggest, trial_config

OBJ = {"quality": "max", "speed": "max", "size": "min"}


def _t(n: int, quality: float, speed: float, size: float, state: str = "complete") -> TrialView:
    return TrialView(n, state, {"x": n}, {"quality": quality, "speed": speed, "size": size})


def test_each_vertical_declares_a_default_space_through_stillroom_search_space() -> None:
    pm = plugin_manager()
    fraud = pm.search_space(pm.task("fraud"))
    assert {"student.params.num_leaves", "student.params.max_bin", "recipe.alpha", "transfer.munge.enabled"} <= set(fraud)
    medical = pm.search_space(pm.task("medical"))
    assert {"student.params.widths", "student.params.families", "student.params.born_again.generations"} <= set(medical)
    molecules = pm.search_space(pm.task("molecules"))
    assert molecules["student.params.hidden"]["when"] == {"student.name": "molecules.mlp"}
    assert {"student.params.featurizer.descriptors", "molecules.analogues.max_count"} <= set(molecules)
    own = {"molecules": {"molecules.analogues.enabled", "molecules.analogues.max_count"}}
    for task in ("fraud", "medical", "molecules"):  # every default space is valid for its own config
        cfg = load_config(pm.task(task))
        space = resolve_space(pm, pm.task(task), cfg.search)
        outside = {k for k in space if not k.startswith(("student.", "recipe.", "transfer."))}
        assert space and outside == own.get(task, set())  # only fields of the vertical's own section


def test_a_field_of_the_verticals_own_section_is_searchable_only_where_the_vertical_opens_it() -> None:
    pm = plugin_manager()
    molecules = pm.task("molecules")
    narrowed = load_config(molecules, None, ["search.space={molecules.analogues.max_count: {low: 100, high: 200}}"])
    space = resolve_space(pm, molecules, narrowed.search)
    assert (space["molecules.analogues.max_count"].low, space["molecules.analogues.max_count"].high) == (100, 200)
    base = narrowed.model_dump(mode="json")
    cfg = trial_config(molecules, base, {"molecules.analogues.enabled": True, "molecules.analogues.max_count": 150})
    assert cfg.molecules.analogues.enabled and cfg.molecules.analogues.max_count == 150  # type: ignore[attr-defined]
    closed = load_config(molecules, None, ["search.space={molecules.ad_threshold: {low: 0.2, high: 0.6}}"])
    with pytest.raises(ConfigError, match=r"search.space.molecules.ad_threshold.*or the vertical's own molecules.analogues"):
        resolve_space(pm, molecules, closed.search)


def test_the_users_space_overrides_the_default_field_by_field_and_null_drops_one() -> None:
    pm = plugin_manager()
    task = pm.task("fraud")
    settings = SearchSettings(space={"recipe.alpha": {"low": 0.5, "high": 0.9}, "transfer.munge.enabled": None})
    space = resolve_space(pm, task, settings)
    assert (space["recipe.alpha"].low, space["recipe.alpha"].high) == (0.5, 0.9)
    assert "transfer.munge.enabled" not in space and "student.params.num_leaves" in space
    only = resolve_space(pm, task, SearchSettings(space={"recipe.alpha": {"low": 0.5, "high": 0.9}}, replace_space=True))
    assert list(only) == ["recipe.alpha"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search.space={data.path: {low: 1, high: 2}}", "not searchable"),
        ("search.space={recipe.alpha: {low: 2, high: 1}}", "low < high"),
        ("search.space={recipe.alpha: {low: 0.1, high: 1, choices: [1]}}", "not both"),
        ("search.space={recipe.alpha: {low: 0, high: 1, log: true}}", "low > 0"),
        ("search.space={recipe.alpha: {lo: 0, high: 1}}", "unknown config field 'search.space.recipe.alpha.lo'"),
        ("search.constraints=['speed is high']", "not of the form"),
        ("search.budget=soon", "not a duration"),
        ("search.choose=[student.roc_auc]", "not one of search.objectives"),
    ],
)
def test_a_bad_search_section_is_one_config_error_naming_the_field(override: str, message: str) -> None:
    pm = plugin_manager()
    with pytest.raises(ConfigError, match=message):
        load_config(pm.task("fraud"), None, [override])


def test_a_value_outside_the_student_settings_fails_validation_like_the_config() -> None:
    pm = plugin_manager()
    task = pm.task("fraud")
    base = load_config(task).model_dump(mode="json")
    with pytest.raises(ConfigError, match="recipe.alpha"):
        trial_config(task, base, {"recipe.alpha": 1.5})
    cfg = trial_config(task, base, {"recipe.alpha": 1e-05, "student.params.num_leaves": 9})
    assert cfg.recipe.alpha == 1e-05 and cfg.student.params["num_leaves"] == 9  # typed, not YAML text


def test_conditional_dimensions_and_structured_choices_round_trip_through_optuna() -> None:
    pm = plugin_manager()
    task = pm.task("molecules")
    base = load_config(task).model_dump(mode="json")
    space = resolve_space(pm, task, SearchSettings())
    study = optuna.create_study(directions=["maximize"], sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        values = suggest(trial, space, base)
        kind = values["student.name"]
        seen.add(kind)
        assert ("student.params.hidden" in values) == (kind == "molecules.mlp")
        assert ("student.params.n_estimators" in values) == (kind == "molecules.lightgbm")
        assert decode(space, trial.params) == values  # lists come back as lists, not JSON text
        trial_config(task, base, values)  # every sampled point is a valid config
        study.tell(trial, 0.0)
    assert {"molecules.lightgbm", "molecules.mlp"} <= seen <= {"molecules.auto", "molecules.lightgbm", "molecules.mlp"}
    assert default_values(space, base)["student.name"] == "molecules.auto"  # the default student is the first trial


def test_two_plugins_declaring_one_field_is_an_error() -> None:
    class Twice:
        @hookimpl
        def stillroom_search_space(self, task):  # noqa: ANN001, ANN201
            return {"recipe.alpha": {"low": 0.1, "high": 0.2}} if task.name == "fraud" else None

    pm = plugin_manager()
    pm.register_plugin(Twice(), "twice")
    with pytest.raises(PluginError, match="'recipe.alpha' of task 'fraud' is declared by two plugins"):
        pm.search_space(pm.task("fraud"))


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("45", 45), ("0.5h", 1800)])
def test_budgets(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_the_front_keeps_the_undominated_and_the_choice_follows_the_tie_break_order() -> None:
    trials = [
        _t(0, 0.99, 10, 0.05),
        _t(1, 0.99, 20, 0.05),  # dominates 0
        _t(2, 0.95, 40, 0.01),
        _t(3, 0.99, 20, 0.02),  # dominates 1
        _t(4, 1.00, 5, 0.10),
        _t(5, 0.50, 1, 1.0, state="pruned"),
    ]
    rules = ["quality >= 0.96"]
    ok = feasible(trials, rules)
    assert [t.number for t in ok] == [0, 1, 3, 4]
    front = pareto_front(ok, OBJ)
    assert [t.number for t in front] == [3, 4]
    assert choose(front, OBJ, []).number == 4  # quality first
    assert choose(front, OBJ, ["size", "quality"]).number == 3  # smallest first
    assert "lowest size, then highest quality" in tie_break_rule(OBJ, ["size", "quality"])
    # quality within 0.01 of the best is a tie: the smaller trial 3 (0.99) wins over 4 (1.00)
    assert choose(front, OBJ, ["quality", "size"], {"quality": 0.01}).number == 3
    assert choose(front, OBJ, ["quality", "size"], {"quality": 0.005}).number == 4
    assert "highest quality (within 0.01 of the best counts as a tie), then lowest size" in tie_break_rule(
        OBJ, ["quality", "size"], {"quality": 0.01}
    )
    tied = [_t(7, 0.99, 20, 0.02), _t(6, 0.99, 20, 0.02)]
    assert choose(tied, OBJ, [], {"quality": 0.01}).number == 6  # the earliest on a full tie


def test_a_choose_tolerance_outside_the_choose_keys_is_a_config_error() -> None:
    pm = plugin_manager()
    with pytest.raises(ConfigError, match="choose_tolerance names 'speed.x'"):
        load_config(pm.task("fraud"), None, ["search.choose_tolerance={speed.x: 0.1}"])
    with pytest.raises(ConfigError, match=">= 0"):
        load_config(pm.task("fraud"), None, ["search.choose_tolerance={retention.average_precision: -1}"])
    assert load_config(pm.task("fraud")).search.choose_tolerance == {"retention.average_precision": 0.01}


def test_the_closest_trial_misses_the_constraints_by_the_least() -> None:
    trials = [_t(0, 0.90, 10, 0.05), _t(1, 0.97, 9.5, 0.05), _t(2, 0.99, 2, 0.5)]
    found = closest(trials, ["quality >= 0.98", "speed >= 10"])
    assert found is not None
    trial, gate = found
    assert trial.number == 1  # relative shortfalls: 0.0816 + 0 (trial 0), 0.0102 + 0.05 (trial 1), 0 + 0.8 (trial 2)
    assert [r.passed for r in gate.rules] == [False, False]
    assert closest([_t(0, 0, 0, 0, state="failed")], ["quality >= 1"]) is None


def test_constraints_judge_a_trial_with_the_gates_margins_and_its_metrics_not_estimable() -> None:
    """The choice checks a trial as the trial itself was checked: a noninferior constraint takes
    the configured margin (molecules: RMSE in the endpoint's units, not the default 0.01), and a
    metric computed on too few events fails its constraint whatever its value."""
    from stillroom.contract.config import GateConfig

    rmse = {"gain.rmse": 0.01, "gain.rmse.ci_low": -0.04, "gain.rmse.ci_high": 0.06, "fidelity.alert_overlap": 0.9}
    trial = TrialView(0, "complete", {}, rmse)
    rules = ["noninferior(rmse)"]
    assert feasible([trial], GateConfig(rules=rules, non_inferiority_margin={"rmse": 0.05}))
    assert not feasible([trial], rules)  # a bare list: the default margin 0.01
    overlap = GateConfig(rules=["fidelity.alert_overlap >= 0.8"])
    assert feasible([trial], overlap)
    few = TrialView(0, "complete", {}, rmse, not_estimable={"fidelity.alert_overlap": "4 teacher alerts < 30"})
    assert not feasible([few], overlap)
    near = closest([few], overlap)
    assert near is not None and "not estimable: 4 teacher alerts < 30" in near[1].reasons()[0]


def test_a_trial_view_carries_what_the_trial_found_not_estimable() -> None:
    from stillroom.searching.study import views

    study = optuna.create_study(directions=["maximize"])
    trial = study.ask()
    trial.set_user_attr("metrics", {"fidelity.alert_overlap": 0.9})
    trial.set_user_attr("not_estimable", {"fidelity.alert_overlap": "4 teacher alerts < 30"})
    trial.set_user_attr("ci_level", 0.9)
    study.tell(trial, 1.0)
    (view,) = views(study)
    assert view.not_estimable == {"fidelity.alert_overlap": "4 teacher alerts < 30"}
    assert view.ci_level == 0.9  # its inconclusive reasons state the level its intervals were computed at


def test_misses_count_per_constraint_the_trials_that_missed_it_and_how() -> None:
    """Which constraint cut the feasible trials, from the choice's own judgement: a worse student,
    an interval too wide to tell (inconclusive), or a metric on too few events (not estimable)."""
    from stillroom.contract.config import GateConfig

    rules = GateConfig(rules=["noninferior(roc_auc)", "fidelity.alert_overlap >= 0.8", "speed >= 10"])
    wide = {"gain.roc_auc.ci_low": -0.03, "gain.roc_auc.ci_high": 0.02, "fidelity.alert_overlap": 0.9, "speed": 12.0}
    worse = {"gain.roc_auc.ci_low": -0.05, "gain.roc_auc.ci_high": -0.02, "fidelity.alert_overlap": 0.7, "speed": 12.0}
    fine = {"gain.roc_auc.ci_low": -0.005, "gain.roc_auc.ci_high": 0.01, "fidelity.alert_overlap": 0.9, "speed": 9.0}
    few = {"fidelity.alert_overlap": "4 teacher alerts < 30"}
    trials = [
        TrialView(0, "complete", {}, wide, not_estimable=few),
        TrialView(1, "complete", {}, worse),
        TrialView(2, "complete", {}, fine),
        TrialView(3, "pruned", {}, worse),  # not judged: it never completed
    ]
    assert misses(trials, rules) == {
        "noninferior(roc_auc)": {"missed": 2, "inconclusive": 1, "not_estimable": 0},
        "fidelity.alert_overlap >= 0.8": {"missed": 2, "inconclusive": 0, "not_estimable": 1},
        "speed >= 10": {"missed": 1, "inconclusive": 0, "not_estimable": 0},
    }
    assert misses([TrialView(0, "complete", {}, {**fine, "speed": 11.0})], rules) == {}


def _open_in_a_process(storage: str, name: str) -> int:
    from stillroom.searching.study import open_study

    study, _ = open_study(name, storage, SearchSettings(), seed=0)
    return len(study.trials)


def test_searches_opening_one_new_study_file_at_once_all_open_it(tmp_path) -> None:
    """Optuna migrates a new SQLite file on first open; unserialised, concurrent first opens die
    on the schema-version insert (seen in CI when a reader polled a search's new file)."""
    import multiprocessing

    names = [f"study-{i}" for i in range(6)]
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        for attempt in range(4):  # a fresh file each time: the race is on its first migration
            storage = f"sqlite:///{tmp_path / f'search-{attempt}.db'}"
            assert pool.starmap(_open_in_a_process, [(storage, name) for name in names]) == [0] * 6
            assert sorted(s.study_name for s in optuna.get_all_study_summaries(storage)) == names
