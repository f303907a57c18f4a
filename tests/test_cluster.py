"""Running on a cluster through nipype's batch plugins (the real SLURM runs in CI's SLURM stage,
.ci/slurm): what petbind must set up for them, and what it says when the scheduler fails."""

import os

from bids_app.cli.parser import build_parser
from bids_app.cli.run import config_from_args, execute
from test_bad_input import make_dataset


class FailingGraph:
    """A graph whose scheduler fails before any step runs, as nipype's SLURM plugin does
    without $LOGNAME (it names each job after it); it records the environment it ran in."""

    name = "petbind_wf"

    def _get_all_nodes(self):
        return []

    def run(self, plugin, plugin_args):
        self.logname = os.environ.get("LOGNAME")
        raise KeyError("scheduler failure")


def test_cluster_plugins_get_a_login_name_and_scheduler_errors_are_shown(tmp_path, monkeypatch,
                                                                         capsys):
    ds = make_dataset(tmp_path / "ds")
    config = config_from_args(build_parser().parse_args(
        [str(ds), str(tmp_path / "out"), "participant", "--plugin", "SLURM",
         "--skip-bids-validation"]))
    monkeypatch.delenv("LOGNAME", raising=False)
    graph = FailingGraph()
    assert execute(config, [], graph) == 1
    assert graph.logname                                # a user name, not nothing
    assert "nipype reported: KeyError: 'scheduler failure'" in capsys.readouterr().err
