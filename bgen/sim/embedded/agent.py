"""Under construction: names exported so the package imports while this module is written."""


class Action:
    pass


class Agent:
    pass


class AgentStateUpdate:
    pass
PyAgentStateUpdate = AgentStateUpdate
