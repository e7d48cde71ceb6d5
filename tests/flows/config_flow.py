"""Configs as Metaflow 2.19 reads them: defaults, files, values, in decorators."""

from daskflow import (Config, FlowSpec, Parameter, config_expr, current, environment,
                      project, retry, step)


@project(name=config_expr("cfg.project"))
class CfgFlow(FlowSpec):
    cfg = Config("cfg", default_value={"project": "cfg_proj", "alpha": 1, "mode": "fast",
                                       "nested": {"k": [1, 2]}, "retries": 2})
    plain = Config("plain", default_value="just text", plain=True)
    alpha = Parameter("alpha", default=cfg.alpha)

    @environment(vars={"MODE": cfg.mode, "UPPER": config_expr("cfg.mode.upper()")})
    @retry(times=cfg.retries)
    @step
    def start(self):
        import os
        self.seen = {"cfg": self.cfg, "type": type(self.cfg).__name__, "alpha": self.alpha,
                     "mode_env": os.environ.get("MODE"), "upper": os.environ.get("UPPER"),
                     "k": list(self.cfg.nested.k), "plain": self.plain,
                     "plain_type": type(self.plain).__name__,
                     "params": current.parameter_names, "branch": current.branch_name}
        try:
            self.cfg.x = 1
        except Exception as e:
            self.seen["mutate"] = f"{type(e).__name__}: {e}"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CfgFlow()
