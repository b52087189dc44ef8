"""ts_forecast: multivariate long-term forecasting with iTransformer, TSMixer, D-CTNet and SSMixer.

Registration only (nothing heavy is imported here): the ``forecast`` task lives in
:mod:`sigplex.plugins.ts_forecast.task`, one model per module (:mod:`.itransformer`,
:mod:`.tsmixer`, :mod:`.dctnet`, :mod:`.ssmixer`), and the CSV reader and protocol in
:mod:`sigplex.datasets.tabular`.
"""
from sigplex.core.plugins import hookimpl
from sigplex.core.task import TaskSpec

MODELS = ("sigplex.plugins.ts_forecast.itransformer", "sigplex.plugins.ts_forecast.tsmixer",
          "sigplex.plugins.ts_forecast.dctnet", "sigplex.plugins.ts_forecast.ssmixer")


@hookimpl
def register_tasks(register):
    register(TaskSpec(
        name="forecast",
        description="Multivariate long-term forecasting (CSV, wide or long, covariates, quantiles) with "
                    "iTransformer, TSMixer, D-CTNet, SSMixer",
        factory="sigplex.plugins.ts_forecast.task:ForecastTask",
        requires=("pandas",),
        extra="ts",
        models=MODELS,
    ))
