"""Phase drivers: gather a phase's facts from the case, build its plan (playbooks/), run it through the
engine.

Recovery, prevention and close-out are phases, not layers: their actions live in actions/, their plans in
playbooks/, and these modules only sequence case reads, plan building and the one engine Runner.
"""
