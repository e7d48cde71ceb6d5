from daskflow import FlowSpec, current, project, step


@project(name="fraud_model")
class ProjectFlow(FlowSpec):
    @step
    def start(self):
        self.seen = {"project": current.project_name, "branch": current.branch_name,
                     "flow": current.project_flow_name, "prod": current.is_production,
                     "user_branch": current.is_user_branch}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectFlow()
