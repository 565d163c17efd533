"""The lab: a multi-host cloud on one machine, with real packets.

Each host is a network namespace `<lab>-<host>` where its agents do their work; an underlay
namespace joins the hosts' tunnel interfaces, an outside namespace stands for the physical
network behind flat networks, and each VM is a namespace whose interface is plugged like a
real VM's tap. The server and the agents are processes of this machine that talk over
loopback, so no lab namespace has a path to the machine's own network.
"""
