"""A search: an Optuna study over training settings, its trials trained one after another into one folder.

What a search varies is a :data:`SearchSpace`: keys as a sweep names them (see spec.py), each a numeric
:class:`Range` (``lr=1e-4:1e-1:log``, ``batch-size=16:128``) or a :class:`Choice` among values
(``optimizer=sgd,adam``). Optuna's TPE sampler picks each trial's values from the trials before it, and its
median pruner ends a trial whose validation accuracy falls below the median of the earlier trials at the same
epoch (the run then ends as ``stopped``, the trial as pruned). A trial's objective is its run's best validation
accuracy, maximised.

The study lives in an Optuna storage: by default the SQLite file ``study.db`` in the search's folder, or any
database URL that several processes, on one machine or many, share. The study holds exactly ``trials`` trials:
the process that creates it enqueues them all as *waiting* trials (a later process asking for more tops them up),
and each process claims one waiting trial at a time, so that however many processes share the study, no trial
is created twice and none is trained twice. Running the same search again continues it: ended trials are kept,
one interrupted by a stop goes on from its run's checkpoint (its values kept), the waiting ones run.

The folder holds ``search.json`` (the spec and where its study is), ``results.csv`` (one row per trial of the
study, rewritten atomically after every trial) and ``runs/trial-001`` ... (ordinary run folders, named by the
trial's number in the study, which is unique however many processes share it). Each trial's figures are also kept
in its user attributes, so that a process on another machine writes the same row.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, Trial, TrialState

from workbench.core.architecture import Architecture
from workbench.core.errors import ConfigError
from workbench.core.experiments.spec import (
    ACTIVATION,
    LAYER_PREFIX,
    SETTINGS,
    SweepSpec,
    Variation,
    describe_point,
    parse_vary,
    value_parser,
)
from workbench.core.experiments.sweep import ENDED, RESULTS_FILE, RUNS_DIR, results_table
from workbench.core.files import atomic_write_text
from workbench.core.runs.folders import MAX_NAME_LENGTH, RUN_FILE, checkpoint_epoch, read_metrics
from workbench.core.runs.launch import LaunchedRun, continue_run, new_run
from workbench.core.runs.summaries import RunSummary, list_runs
from workbench.core.training.callbacks import Callback, Terminable
from workbench.core.training.config import TrainConfig
from workbench.core.training.state import EpochMetrics, TrainState

SEARCH_FILE = "search.json"
RESULTS_LOCK = ".results.lock"
"""Taken while results.csv is rewritten, so that of processes sharing the folder the last to write saw the most."""
STUDY_FILE = "study.db"
STUDY_NAME = "workbench"
FORMAT = "workbench-search"
SPEC_ATTR = "workbench_spec"
"""The study's user attribute holding what its trials search (:meth:`SearchSpec.identity`)."""
FIGURES_ATTR = "figures"
"""A trial's user attribute: its run's status and figures (accuracies as fractions, seconds), set when it ends."""
WORKER_ATTR = "worker"
"""A trial's user attribute: the machine and process that claimed it last."""
ERROR_ATTR = "error"
"""A failed trial's user attribute: why it failed, in a sentence."""
EXECUTION = ("device", "mixed_precision", "compile", "data_dir")
"""Settings of how a run computes, not what it is: processes sharing a study may differ in them."""
STATUSES = {
    TrialState.WAITING: "waiting",
    TrialState.RUNNING: "running",
    TrialState.COMPLETE: "finished",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
}
"""A trial's status in the results, by its state in the study."""
_ENDED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_SPEC_WAIT_SECONDS = 60.0  # how long a process joining a study waits for its creator to describe it
_SQLITE_TIMEOUT = 30  # seconds a SQLite writer waits for another's lock, instead of "database is locked"
_CHECKED_COMBINATIONS = 32  # above this many combinations of the ends, each key's ends are checked on their own


# ---- what a search varies ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """``KEY=LOW:HIGH[:log]``: a number from ``low`` to ``high`` (both included), whole numbers where both ends are
    ints, drawn on a log scale if ``log``."""

    key: str
    low: int | float
    high: int | float
    log: bool = False

    @property
    def integer(self) -> bool:
        """Whether the values are whole numbers."""
        return isinstance(self.low, int) and isinstance(self.high, int)

    @property
    def ends(self) -> tuple[Any, ...]:
        """The values every run's settings are checked with before the first trial."""
        return (self.low, self.high)

    def suggest(self, trial: Trial) -> Any:
        """The trial's value of this key, drawn by the study's sampler (or the value it already has)."""
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log)

    def text(self) -> str:
        """As written on the command line, e.g. ``lr=0.0001:0.1:log``."""
        return f"{self.key}={self.low}:{self.high}" + (":log" if self.log else "")

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Choice:
    """``KEY=V1,V2,...``: one of ``values`` (at least two)."""

    key: str
    values: tuple[Any, ...]

    @property
    def ends(self) -> tuple[Any, ...]:
        """The values every run's settings are checked with before the first trial: all of them."""
        return self.values

    def suggest(self, trial: Trial) -> Any:
        """The trial's value of this key, chosen by the study's sampler (or the value it already has)."""
        return trial.suggest_categorical(self.key, list(self.values))

    def text(self) -> str:
        """As written on the command line, e.g. ``optimizer=sgd,adam``."""
        return f"{self.key}=" + ",".join(str(value) for value in self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "choices": list(self.values)}


Dimension = Range | Choice
SearchSpace = tuple[Dimension, ...]
"""What a search varies: one :class:`Range` or :class:`Choice` per key, in the order given."""


def parse_space(text: str) -> Dimension:
    """``KEY=LOW:HIGH[:log]`` as a :class:`Range` or ``KEY=V1,V2,...`` as a :class:`Choice` (values parsed as
    :func:`~workbench.core.experiments.spec.parse_vary` does); :class:`ConfigError` naming the key for an unknown
    key, a value of the wrong type, a range of a key that is not a number, LOW not below HIGH, ``log`` with LOW not
    above 0, or fewer than two choices."""
    key, found, rest = text.partition("=")
    key = key.strip()
    if not found or not key:
        raise ConfigError(
            f"'{text}' is not KEY=LOW:HIGH[:log] or KEY=V1,V2,...: e.g. lr=1e-4:1e-1:log or optimizer=sgd,adam."
        )
    if ":" not in rest:
        choice = parse_vary(f"{key}={rest}")
        if len(choice.values) < 2:
            raise ConfigError(
                f"{key}: give at least two values to choose from, or a range LOW:HIGH (got '{rest.strip()}'); a "
                f"setting that does not change is a training option."
            )
        return Choice(key, choice.values)
    return _parse_range(key, rest)


def _parse_range(key: str, rest: str) -> Range:
    parts = [part.strip() for part in rest.split(":")]
    log = len(parts) == 3 and parts[2].lower() == "log"
    if len(parts) not in (2, 3) or (len(parts) == 3 and not log) or "," in rest:
        raise ConfigError(f"{key}: write a range as LOW:HIGH or LOW:HIGH:log, not '{rest.strip()}'.")
    if not parts[0] or not parts[1]:
        raise ConfigError(f"{key}: give both ends of the range LOW:HIGH (got '{rest.strip()}').")
    parse, expected = value_parser(key)  # an unknown key is refused here, with a did-you-mean
    if key == ACTIVATION or (key in SETTINGS and not _numeric(parse)):
        raise ConfigError(
            f"{key}: a range LOW:HIGH is for numbers, and {key} is {expected}: give its choices as {key}=V1,V2,..."
        )
    low, high = (_bound(key, parse, expected, part) for part in parts[:2])
    if low >= high:
        raise ConfigError(f"{key}: the range's low end must be below its high end (got {parts[0]}:{parts[1]}).")
    if log and low <= 0:
        raise ConfigError(f"{key}: a log range needs a low end above 0 (got {parts[0]}).")
    if key.startswith(LAYER_PREFIX) and not (isinstance(low, int) and isinstance(high, int)):
        low, high = float(low), float(high)  # whole numbers only where both ends are
    return Range(key, low, high, log)


def _numeric(parse: Callable[[str], Any]) -> bool:
    """Whether a setting's parser reads numbers (the word settings refuse "1")."""
    try:
        return isinstance(parse("1"), int | float)
    except ValueError:
        return False


def _bound(key: str, parse: Callable[[str], Any], expected: str, text: str) -> int | float:
    try:
        value = parse(text)
    except ValueError:
        raise ConfigError(f"{key}: '{text}' is not {expected}.") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{key}: '{text}' is not a number: a range's ends are numbers.")
    return value


def space_from_dicts(items: list[dict[str, Any]]) -> SearchSpace:
    """A space as :meth:`Range.to_dict` and :meth:`Choice.to_dict` wrote it; :class:`ConfigError` if damaged."""
    try:
        return tuple(
            Choice(str(item["key"]), tuple(item["choices"]))
            if "choices" in item
            else Range(str(item["key"]), item["low"], item["high"], bool(item.get("log", False)))
            for item in items
        )
    except (KeyError, TypeError) as error:
        raise ConfigError(f"The search's space is damaged: {error}.") from None


def space_text(space: SearchSpace) -> str:
    """The space as the command line gives it, e.g. ``lr=0.0001:0.1:log optimizer=sgd,adam``."""
    return " ".join(dimension.text() for dimension in space)


@dataclass(frozen=True)
class SearchSpec:
    """A search: a network and its settings, what its trials vary, and how many trials the study holds."""

    architecture: Architecture
    config: TrainConfig
    space: SearchSpace
    trials: int

    def check(self) -> None:
        """Refuse, before any trial, a spec whose trials cannot all start: no space, a key searched twice, fewer
        than 1 trial, no validation images, or a key whose ends (a range's low and high, every choice) make
        settings out of range, name a layer that does not exist or a network that does not fit."""
        if not self.space:
            raise ConfigError("Search at least one key: e.g. --space lr=1e-4:1e-1:log or --space optimizer=sgd,adam.")
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ConfigError(f"--trials must be a whole number of at least 1, not {self.trials!r}.")
        if self.config.val_size == 0:
            raise ConfigError("A search maximises the validation accuracy: give a validation size above 0.")
        keys = [dimension.key for dimension in self.space]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ConfigError(f"{twice[0]} is searched twice: give it in one --space.")
        variations = tuple(Variation(dimension.key, dimension.ends) for dimension in self.space)
        combinations = math.prod(len(variation.values) for variation in variations)
        if combinations <= _CHECKED_COMBINATIONS:
            SweepSpec(self.architecture, self.config, variations).check()
        else:  # every combination of the ends would take too long to validate: each key's ends on their own
            for variation in variations:
                SweepSpec(self.architecture, self.config, (variation,)).check()

    def settings(self, params: dict[str, Any]) -> tuple[Architecture, TrainConfig]:
        """The network and settings of the trial with these values; :class:`ConfigError` naming what breaks them."""
        return SweepSpec(self.architecture, self.config, ()).settings(params)

    def identity(self) -> dict[str, Any]:
        """What every process sharing the study must agree on: the network, the settings but those of
        :data:`EXECUTION`, and the space (as JSON would give it back)."""
        config = {key: value for key, value in self.config.to_dict().items() if key not in EXECUTION}
        document = {
            "architecture": self.architecture.to_dict(),
            "config": config,
            "space": [dimension.to_dict() for dimension in self.space],
        }
        return dict(json.loads(json.dumps(document)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture.to_dict(),
            "config": self.config.to_dict(),
            "space": [dimension.to_dict() for dimension in self.space],
            "trials": self.trials,
        }


# ---- a trial as the search shows it --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchTrial:
    """One trial of the study: its number there (from 0), its values, its status (see :data:`STATUSES`), its
    objective (the best validation accuracy, a fraction; None until it finished) and, where it failed or was
    pruned, why."""

    number: int
    params: dict[str, Any]
    status: str
    value: float | None = None
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Its run folder's name under ``runs/``: ``trial-001`` for the study's first trial."""
        return trial_name(self.number)

    @property
    def label(self) -> str:
        """Its values, e.g. "lr 0.0031, optimizer adam"."""
        return describe_point(self.params)


def trial_name(number: int) -> str:
    """The run folder of the trial numbered ``number`` in its study (from 0): ``trial-001`` for 0."""
    return f"trial-{number + 1:03d}"


# ---- the study's storage -----------------------------------------------------------------------------------------


def default_storage(folder: str | os.PathLike) -> str:
    """The study's storage when none is given: the SQLite file :data:`STUDY_FILE` in the search's folder."""
    return f"sqlite:///{Path(folder).resolve() / STUDY_FILE}"


def shown_url(url: str) -> str:
    """``url`` without its password, to print and save."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return url


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for another database, or one in memory)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def open_storage(url: str) -> RDBStorage:
    """The Optuna storage at ``url``; for SQLite, writers wait for each other instead of failing with "database is
    locked". :class:`ConfigError` when it cannot be opened."""
    sqlite = _sqlite_file(url)
    engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": _SQLITE_TIMEOUT}} if sqlite is not None else {}
    try:
        if sqlite is not None:
            sqlite.parent.mkdir(parents=True, exist_ok=True)
        return RDBStorage(url, engine_kwargs=engine_kwargs)
    except (
        ValueError,
        ImportError,
        OSError,
        sqlalchemy.exc.SQLAlchemyError,
        optuna.exceptions.StorageInternalError,
    ) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"--storage: cannot open the study's database {shown_url(url)} ({reason}).") from None


@contextlib.contextmanager
def _serialised(url: str) -> Iterator[None]:
    """For a SQLite study, the exclusive right to read and then change it (see :func:`_exclusive`; the lock file is
    next to the database): SQLite runs a read and the write after it in two transactions, so two processes could
    otherwise both claim one waiting trial. Other databases lock the trial's row themselves."""
    database = _sqlite_file(url)
    if database is None:
        yield
        return
    with _exclusive(database.with_name(database.name + ".lock")):
        yield


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the file ``lock`` (made if missing), waited for; the kernel drops it if the process
    dies."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+", encoding="utf-8") as stream:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
        yield


# ---- the search ----------------------------------------------------------------------------------------------------


class _Pruning(Callback[Terminable]):
    """Reports each epoch's validation accuracy to the trial and, when the study's pruner says so, ends the run
    after that epoch (status ``stopped``, untested; never after the last epoch, which ends the run anyway)."""

    def __init__(self, trial: Trial, reported: set[int]):
        self.trial = trial
        self.reported = set(reported)  # epochs reported by an earlier attempt of the trial: Optuna keeps the first
        self.pruned_after: int | None = None

    def on_epoch_end(self, trainer: Terminable, state: TrainState, metrics: EpochMetrics) -> None:
        value = metrics.val_accuracy
        if not math.isfinite(value):
            return
        if metrics.epoch not in self.reported:
            self.trial.report(value, metrics.epoch)
            self.reported.add(metrics.epoch)
        if state.epoch < state.epochs and self.trial.should_prune():
            self.pruned_after = metrics.epoch
            trainer.terminate(
                "stopped",
                f"Pruned by the search after epoch {metrics.epoch}: its validation accuracy {value:.2%} is below the "
                f"median of the earlier trials at that epoch.",
            )


class Search:
    """A search's folder and its study; see the module's docstring. Make one with :meth:`open`."""

    def __init__(self, folder: Path, spec: SearchSpec, url: str, storage: RDBStorage, study: optuna.Study):
        self.folder = folder
        self.spec = spec
        self.url = url
        self.storage = storage
        self.study = study
        self.study_id = storage.get_study_id_from_name(study.study_name)

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike,
        spec: SearchSpec,
        storage: str | None = None,
        pruner: optuna.pruners.BasePruner | None = None,
    ) -> Search:
        """The search of ``spec`` writing into ``folder``, its study in ``storage`` (a database URL; default
        :func:`default_storage`): created with its trials waiting if it is new, else joined, after checking it
        searches the same as ``spec`` (and topped up to ``spec.trials`` trials).

        ``pruner`` ends trials early (default: Optuna's median pruner). The spec is checked first; every refusal
        is a :class:`ConfigError`, before any run starts.
        """
        spec.check()
        path = Path(folder)
        url = storage if storage is not None else default_storage(path)
        if not url.strip():
            raise ConfigError("--storage: the database URL is empty.")
        _check_folder(path, url)
        with _serialised(url):
            rdb = open_storage(url)
            study = _created_or_joined(
                rdb, spec, pruner or optuna.pruners.MedianPruner(), _sqlite_file(url) is not None
            )
            search = cls(path, spec, url, rdb, study)
            search._top_up()
            search._reclaim_abandoned()
            path.mkdir(parents=True, exist_ok=True)
            document = {
                "format": FORMAT,
                "version": 1,
                "storage": shown_url(url),
                "study": study.study_name,
                "spec": spec.to_dict(),
            }
            atomic_write_text(path / SEARCH_FILE, json.dumps(document, indent=2) + "\n")
        search.save()
        return search

    def run_folder(self, number: int) -> Path:
        """Where the trial numbered ``number`` (from 0) is recorded on this machine."""
        return self.folder / RUNS_DIR / trial_name(number)

    def trials(self) -> list[SearchTrial]:
        """The study's trials in order: all but the waiting ones beyond :attr:`SearchSpec.trials` (enqueued by a
        process that asked for more)."""
        frozen = self.storage.get_all_trials(self.study_id, deepcopy=False)
        shown = [trial for trial in frozen if trial.number < self.spec.trials or trial.state != TrialState.WAITING]
        return [self._described(trial) for trial in sorted(shown, key=lambda trial: trial.number)]

    def counts(self) -> dict[str, int]:
        """How many of :meth:`trials` have each status."""
        counts: dict[str, int] = {}
        for trial in self.trials():
            counts[trial.status] = counts.get(trial.status, 0) + 1
        return counts

    def best(self) -> SearchTrial | None:
        """The finished trial with the highest best validation accuracy (the first of equals); None before any."""
        finished = [trial for trial in self.trials() if trial.status == "finished" and trial.value is not None]
        return max(finished, key=lambda trial: (trial.value or 0.0, -trial.number), default=None)

    def run(
        self,
        launched: Callable[[SearchTrial, LaunchedRun], None] = lambda trial, launch: None,
        ended: Callable[[SearchTrial], None] = lambda trial: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Train waiting trials one after another until the study has none left for this process: True then,
        False when ``should_stop`` said so (checked between trials; during one, ``launched``'s caller stops its
        trainer: the trial then waits again, to go on from its checkpoint when the search runs again).

        ``launched`` is told each trial with its run before it trains, ``ended`` each trial once it ended
        (finished, pruned or failed). A trial whose values make settings that do not fit fails and the search goes
        on; an exception while one trains fails it and is raised again.
        """
        while not should_stop():
            claimed = self._claim()
            if claimed is None:
                return True
            if not self._run_trial(*claimed, launched, ended):
                return False
        return False

    # ---- one trial -------------------------------------------------------------------------------------------

    def _claim(self) -> tuple[Trial, int] | None:
        """A waiting trial of the first :attr:`SearchSpec.trials`, now running for this process, with its id."""
        with _serialised(self.url):
            for frozen in self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.WAITING,)):
                if frozen.number >= self.spec.trials:
                    continue
                trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, frozen.number)
                try:
                    if not self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                        continue  # another process claimed it first
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue
                try:
                    self.storage.set_trial_user_attr(trial_id, WORKER_ATTR, {"host": _host(), "pid": os.getpid()})
                    # seeded by the search's seed and the trial's number: a study run by one process is reproducible
                    seed = (self.spec.config.seed * 1_000_003 + frozen.number) % 2**32
                    self.study.sampler = optuna.samplers.TPESampler(seed=seed)
                    return Trial(self.study, trial_id), trial_id
                except BaseException:  # interrupted before the trial was handed over: it waits again
                    self._give_back(trial_id)
                    raise
        return None

    def _run_trial(
        self,
        trial: Trial,
        trial_id: int,
        launched: Callable[[SearchTrial, LaunchedRun], None],
        ended: Callable[[SearchTrial], None],
    ) -> bool:
        """Train the claimed trial; False when its run was stopped (the trial then waits again)."""
        told = False
        try:
            params = {dimension.key: dimension.suggest(trial) for dimension in self.spec.space}
            try:
                architecture, config = self.spec.settings(params)
            except ConfigError as error:  # values drawn together that do not fit (each end was checked)
                self._fail(trial_id, str(error))
                told = True
                self.save()
                ended(self._described(self.storage.get_trial(trial_id)))
                return True
            launch = self._launch(trial.number, params, architecture, config)
            pruning = _Pruning(trial, set(self.storage.get_trial(trial_id).intermediate_values))
            launch.trainer.callbacks.append(pruning)
            self.save()
            launched(SearchTrial(trial.number, params, "running"), launch)
            result = launch.trainer.run()
            figures = self._folder_figures(trial.number)
            figures["run_status"] = result.status
            self.storage.set_trial_user_attr(trial_id, FIGURES_ATTR, figures)
            best = figures.get("best_val_accuracy")
            if result.status == "stopped" and pruning.pruned_after is not None:
                self.study.tell(trial, state=TrialState.PRUNED)
            elif result.status not in ENDED:  # stopped by the user: it goes on when the search runs again
                self._give_back(trial_id)
                told = True
                self.save()
                return False
            elif isinstance(best, float) and math.isfinite(best):
                self.study.tell(trial, best)
            else:
                self._fail(trial_id, f"{result.message} It has no validation accuracy to maximise.".strip())
            told = True
        except Exception as error:
            if not told:
                self._fail(trial_id, str(error) or type(error).__name__)
            self.save()
            raise
        except BaseException:  # interrupted (Ctrl+C before the run trained): the trial waits for the next process
            if not told:
                self._give_back(trial_id)
            self.save()
            raise
        self.save()
        ended(self._described(self.storage.get_trial(trial_id)))
        return True

    def _launch(
        self, number: int, params: dict[str, Any], architecture: Architecture, config: TrainConfig
    ) -> LaunchedRun:
        """The trial's run: continued from its checkpoint where an earlier attempt left one here, else new."""
        folder = self.run_folder(number)
        if (folder / RUN_FILE).exists():
            saved = checkpoint_epoch(folder)
            if saved is not None:
                return continue_run(folder, max(config.epochs - saved, 0), progress=False)
            shutil.rmtree(folder)  # stopped before its first checkpoint: it starts again
        elif folder.exists():
            shutil.rmtree(folder)  # a folder made for a run that never wrote anything
        folder.parent.mkdir(parents=True, exist_ok=True)
        # named by its values, so that the Runs tab tells the search's runs apart
        name = f"{architecture.name} · {describe_point(params)}"[:MAX_NAME_LENGTH]
        return new_run(architecture, config, folder, progress=False, name=name)

    def _fail(self, trial_id: int, message: str) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.storage.set_trial_user_attr(trial_id, ERROR_ATTR, message)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)

    def _give_back(self, trial_id: int) -> None:
        """The trial waits again, with the values it has, for this or another process to take it up."""
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.storage.set_trial_state_values(trial_id, TrialState.WAITING)

    # ---- the study's trials ----------------------------------------------------------------------------------

    def _top_up(self) -> None:
        """Enqueue waiting trials until the study holds :attr:`SearchSpec.trials` (with the lock held)."""
        held = len(self.storage.get_all_trials(self.study_id, deepcopy=False))
        for _ in range(self.spec.trials - held):
            self.study.enqueue_trial({})

    def _reclaim_abandoned(self) -> None:
        """Trials left running by a process of this machine that is gone (killed) wait again (lock held)."""
        for frozen in self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            worker = frozen.user_attrs.get(WORKER_ATTR)
            if not isinstance(worker, dict) or worker.get("host") != _host():
                continue
            pid = worker.get("pid")
            if isinstance(pid, int) and pid != os.getpid() and not _alive(pid):
                self._give_back(self.storage.get_trial_id_from_study_id_trial_number(self.study_id, frozen.number))

    def _described(self, frozen: FrozenTrial) -> SearchTrial:
        keys = [dimension.key for dimension in self.spec.space]
        params = {key: frozen.params[key] for key in keys if key in frozen.params}
        status = STATUSES.get(frozen.state, frozen.state.name.lower())
        figures = frozen.user_attrs.get(FIGURES_ATTR)
        value = frozen.value if frozen.state == TrialState.COMPLETE else None
        message = str(frozen.user_attrs.get(ERROR_ATTR, ""))
        if frozen.state == TrialState.PRUNED and frozen.intermediate_values:
            last = max(frozen.intermediate_values)
            message = f"pruned after epoch {last} ({frozen.intermediate_values[last]:.2%} validation accuracy)"
        return SearchTrial(frozen.number, params, status, value, message, dict(figures) if figures else {})

    # ---- results ---------------------------------------------------------------------------------------------

    def _folder_figures(self, number: int, summaries: dict[str, RunSummary] | None = None) -> dict[str, Any]:
        """The figures of :data:`RESULT_COLUMNS` (accuracies as fractions) of the trial's run folder here; None
        where the run has not got that far (or its folder is elsewhere)."""
        if summaries is None:
            summaries = {summary.folder.name: summary for summary in list_runs(self.folder / RUNS_DIR)}
        summary = summaries.get(trial_name(number))
        final = None
        if summary is not None and not summary.damaged:
            history = read_metrics(self.run_folder(number))
            final = history[-1].val_accuracy if history else None
        return {
            "best_val_accuracy": _finite(summary.best_val_accuracy if summary else None),
            "final_val_accuracy": _finite(final),
            "test_accuracy": _finite(summary.test_accuracy if summary else None),
            "train_seconds": _finite(summary.duration_seconds if summary else None),
        }

    def keys(self) -> list[str]:
        """The searched keys, in the spec's order."""
        return [dimension.key for dimension in self.spec.space]

    def results(self) -> list[dict[str, Any]]:
        """One row per trial (:meth:`trials`): ``run``, each searched key's value, ``status`` and the figures of
        :data:`RESULT_COLUMNS` (accuracies in percent; empty where the trial has not got that far). An ended
        trial's figures are those it saved in the study; another's, its run folder's here."""
        summaries = {summary.folder.name: summary for summary in list_runs(self.folder / RUNS_DIR)}
        rows = []
        for trial in self.trials():
            row: dict[str, Any] = {"run": trial.name, **{key: trial.params.get(key, "") for key in self.keys()}}
            row["status"] = trial.status
            ended = trial.status in ("finished", "pruned", "failed")
            figures = trial.figures if ended and trial.figures else self._folder_figures(trial.number, summaries)
            row["best_val_accuracy"] = _percent(figures.get("best_val_accuracy"))
            row["final_val_accuracy"] = _percent(figures.get("final_val_accuracy"))
            row["test_accuracy"] = _percent(figures.get("test_accuracy"))
            seconds = figures.get("train_seconds")
            row["train_seconds"] = "" if not isinstance(seconds, int | float) else f"{seconds:.3f}"
            rows.append(row)
        return rows

    def results_csv(self) -> str:
        """:meth:`results` as CSV text, with a header line."""
        return results_table(self.keys(), self.results())

    def save(self) -> None:
        """Write results.csv as the study stands (atomically; one process sharing the folder at a time, so that the
        last file written is the one read last from the study)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.folder / RESULTS_LOCK):
            atomic_write_text(self.folder / RESULTS_FILE, self.results_csv())


def _check_folder(path: Path, url: str) -> None:
    """:class:`ConfigError` unless ``path`` is new, empty, or the folder of a search of the study at ``url``."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file, not a folder: give the search a folder with --out.")
    document_path = path / SEARCH_FILE
    if document_path.exists():
        try:
            document = json.loads(document_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ConfigError(f"{document_path} is damaged ({error}).") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ConfigError(f"{document_path} is not a workbench search.")
        if document.get("storage") != shown_url(url):
            raise ConfigError(
                f"{path} holds the search whose study is in {document.get('storage')}, not {shown_url(url)}: give "
                f"--storage {document.get('storage')} to continue it, or another --out."
            )
        return
    ours = {SEARCH_FILE, RESULTS_FILE, RESULTS_LOCK, RUNS_DIR, STUDY_FILE}
    others = [
        entry.name
        for entry in (path.iterdir() if path.is_dir() else ())
        if not entry.name.startswith(STUDY_FILE) and entry.name not in ours and not entry.name.endswith(".tmp")
    ]
    if others:
        shown = ", ".join(sorted(others)[:3]) + (", ..." if len(others) > 3 else "")
        raise ConfigError(
            f"{path} is not empty and holds no search (it holds {shown}): give a new folder for the search, or the "
            f"folder of the search to continue."
        )


def _created_or_joined(
    storage: RDBStorage, spec: SearchSpec, pruner: optuna.pruners.BasePruner, serialised: bool
) -> optuna.Study:
    """The study :data:`STUDY_NAME`: created with its trials waiting and its spec, or the existing one, once its
    creator described it, refused unless it searches what ``spec`` does.

    ``serialised``: the caller holds the SQLite study's lock, so no other process is creating the study now; one
    found without its spec and with no trial begun was left by a creator that died half-way, and is taken over.
    """
    try:
        study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="maximize", pruner=pruner)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage, pruner=pruner)
    else:
        for _ in range(spec.trials):
            study.enqueue_trial({})
        study.set_user_attr(SPEC_ATTR, spec.identity())  # last: joining processes wait for it (see below)
        return study
    where = shown_url(storage.url)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ConfigError(f"The study '{STUDY_NAME}' in {where} minimises: give another --storage.")
    if serialised and SPEC_ATTR not in study.user_attrs:
        trials = study.get_trials(deepcopy=False)
        if all(trial.state == TrialState.WAITING and not trial.params for trial in trials):
            study.set_user_attr(SPEC_ATTR, spec.identity())  # the waiting trials are topped up by the caller
    deadline = time.monotonic() + _SPEC_WAIT_SECONDS
    while SPEC_ATTR not in study.user_attrs:  # created by a process that has not described it yet
        if serialised or time.monotonic() >= deadline:
            raise ConfigError(
                f"The study '{STUDY_NAME}' in {where} is not a workbench search's (it says nothing of what it "
                f"searches): give another --storage."
            )
        time.sleep(0.2)
    _check_same(study.user_attrs[SPEC_ATTR], spec, where)
    return study


def _check_same(stored: Any, spec: SearchSpec, where: str) -> None:
    """:class:`ConfigError` saying what differs when the study at ``where`` searches something else than ``spec``."""
    ours = spec.identity()
    if stored == ours:
        return
    study = f"The study '{STUDY_NAME}' in {where}"
    if not isinstance(stored, dict):
        raise ConfigError(f"{study} is not a workbench search's: give another --storage.")
    if stored.get("space") != ours["space"]:
        theirs = space_text(space_from_dicts(list(stored.get("space") or [])))
        raise ConfigError(
            f"{study} searches {theirs}, not {space_text(spec.space)}: give the same --space (or another --out or "
            f"--storage for a new search)."
        )
    if stored.get("architecture") != ours["architecture"]:
        name = (stored.get("architecture") or {}).get("name", "another network")
        raise ConfigError(
            f"{study} trains the network '{name}' as it was then, not this '{spec.architecture.name}': give the "
            f"same --preset or --arch."
        )
    theirs_config, ours_config = dict(stored.get("config") or {}), ours["config"]
    differing = sorted(key for key in {*theirs_config, *ours_config} if theirs_config.get(key) != ours_config.get(key))
    shown = ", ".join(f"{key} {theirs_config.get(key)!r} (here {ours_config.get(key)!r})" for key in differing[:3])
    raise ConfigError(f"{study} trains its runs with other settings: {shown}: give the same training options.")


def _host() -> str:
    return socket.gethostname()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is still there."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _percent(value: Any) -> str:
    return "" if not isinstance(value, int | float) or value != value else f"{value * 100:.2f}"
