"""The distributed read side: `casestream worker` folds the Kafka event topics into MongoDB read models.

Modules: `app` (the group consumer), `processing` (one batch: decode, park, fold, write, track),
`parking` (poison events and the events that wait behind them), `dead_letters` (the dead-letter topic),
`rebuild` (read models again from Kafka or from the event store). See docs/read-models.md.

What a worker stores in the read models' MongoDB database, beside the read-model collections:

- `tracking`, one document per partition it has applied, ``_id = "worker:<topic>:<partition>"``
  (e.g. ``worker:casestream.case.v1:3``)::

      {_id, position: <highest log position applied from that partition>, topic, partition,
       offset: <highest Kafka offset handled, applied or parked>, event_time: <ISO occurred_at of the event at
       `position`>, event_ts: <the same, epoch seconds>, updated_at: <ISO write time>, worker: <name>}

  It is written after the batch's documents and only ever moves forward (a write at a lower position is
  refused), so `MongoDocumentStore.tracking("worker:<topic>:<partition>")` is a read-your-writes bound: an
  event at position P of aggregate A is visible once the tracking position of A's partition is >= P. The
  topic is `adapters.contract.topics(prefix)[event type name]`, the partition is Kafka's default keyed
  placement of `str(A)` (`adapters.kafka_relay.key_partitioner`), over the topic's partition count.
  Seconds behind: now - event_ts; events behind: the topic's end offset - 1 - offset (or the consumer
  group's lag).
- `worker_parked` and `worker_parked_events`: parked cases and their records (adapters/stream_worker/parking.py).
"""
