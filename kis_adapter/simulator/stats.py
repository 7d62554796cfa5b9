"""What the simulator did, counted; tests compare these with what clients saw, `simulate` prints them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SimulatorStats:
    """Counters of one simulator run."""

    approval_requests: int = 0  # every POST /oauth2/Approval, faulted ones included
    approval_keys_issued: int = 0
    token_requests: int = 0  # POST /oauth2/tokenP
    access_tokens_issued: int = 0
    master_requests: int = 0  # GET of the master zip
    connections: int = 0  # WebSocket connections accepted
    subscriptions: int = 0  # OPSP0000 answers
    duplicates: int = 0  # OPSP0002 answers
    unsubscriptions: int = 0  # OPSP0001 answers
    error_acks: int = 0  # any other ack
    refused_in_use: int = 0  # OPSP8996: a second session on an app key (then closed)
    frames_sent: int = 0  # data frames sent (one per receiving connection)
    records_sent: int = 0
    frames_missed: int = 0  # frames due that reached nobody (session timeline: while it was disconnected)
    suppressed: int = 0  # messages not sent because the connection was stalled
    pingpongs_sent: int = 0
    pongs_received: int = 0  # PINGPONG answers from clients: text echoes and Pong frames carrying it
    pingpong_drops: int = 0  # connections closed for not answering PINGPONG
    aborts: int = 0  # connections aborted by fault injection
    faults_injected: int = 0  # scheduled --fault entries applied
    timelines_started: int = 0  # replays started (one in shared mode; one per session in session mode)
    timelines_resumed: int = 0  # reconnects that continued their session's replay
