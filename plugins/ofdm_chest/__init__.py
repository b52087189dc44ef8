"""ofdm_chest: AdaFortiTran / FortiTran OFDM channel estimation on sionna 3GPP channels, against LS and LMMSE.

Registration only (nothing heavy is imported here): the ``chest`` task lives in
:mod:`sigplex.plugins.ofdm_chest.task`, the models in :mod:`.adafortitran`, the classical
estimators in :mod:`.baselines`, and the channel generator and ``.mat`` reader in
:mod:`sigplex.datasets.ofdm`.
"""
from sigplex.core.plugins import hookimpl
from sigplex.core.task import TaskSpec


@hookimpl
def register_tasks(register):
    register(TaskSpec(
        name="chest",
        description="OFDM channel estimation (AdaFortiTran, FortiTran) on sionna TDL/CDL channels vs LS and LMMSE",
        factory="sigplex.plugins.ofdm_chest.task:ChestTask",
        requires=("sionna", "scipy"),
        extra="ofdm",
        models=("sigplex.plugins.ofdm_chest.adafortitran",),
    ))
