"""kombu's Redis transport with a fetch that a SIGKILL cannot lose.

kombu takes a message in two round trips: BRPOP pops it off the queue, then a second
command records it as unacked (``unacked_index``/``unacked``). A worker killed between
the two loses the message: it is in neither the queue nor ``unacked``, so no visibility
timeout brings it back, and a chord missing a header task never calls back.

Here the pop is ``BLMOVE queue -> inflight list``, one atomic command, and the record is
one Lua script that removes the message from the inflight list and writes ``unacked`` in
the same step. At every instant the message is in the queue, the inflight list or
``unacked``. A channel's inflight lists are registered in a sorted set scored by its last
heartbeat; the restore sweep (kombu's ``restore_visible`` timer) moves the contents of
lists whose owner stopped beating back to the front of their queue (an empty list stays
registered for a day: its owner may be alive, busy on a long task). A channel stalled
past that (SIGSTOP) finds its message gone when it resumes and does not deliver it, so
the sweep never causes a second delivery.

BLMOVE takes one source key, so this applies to a channel consuming one queue with one
priority step (``priority_steps=[0]``, set in ``celeryconfig``): every quantpipe worker
consumes its own pool's queue (``-Q pool``). A channel with several keys or a global key
prefix keeps kombu's BRPOP fetch and its window (logged once).
"""

from __future__ import annotations

import logging
import uuid
from queue import Empty
from time import monotonic, time

from kombu.transport import redis as kredis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

INFLIGHT_INDEX = "_kombu.inflight_index"  # inflight list -> time of its owner's last heartbeat
INFLIGHT_SOURCE = "_kombu.inflight_source"  # inflight list -> the queue key it is filled from
DEAD_LETTER = "_kombu.dead_letter"  # queue entries that are not kombu messages, kept for a person

# KEYS: inflight, unacked_index, unacked. ARGV: item, delivery tag, score, unacked value.
# 0 when the sweep already moved the item back (the channel stalled past the stale time).
_RECORD = """
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
return 1
"""

# KEYS: index, sources. ARGV: inflight list, its source queue key. Redis's clock, so hosts'
# clocks need not agree.
_HEARTBEAT = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], t[1] + t[2] / 1e6, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

# KEYS: index, sources. ARGV: stale-after seconds, forget-after seconds, then optionally the
# lists to restore and unregister whatever their age (a channel's own). Swept, a stale list that
# holds messages is emptied into its queue and unregistered; an empty one stays registered until
# forget-after: it may be a live channel busy on a long task, or one beating less often than this
# sweeper's stale-after, whose next fetch would land in an unregistered list. Returns the number
# of messages moved.
_RESTORE = """
local t = redis.call('TIME')
local now = t[1] + t[2] / 1e6
local explicit = #ARGV > 2
local lists = {}
if explicit then
  for i = 3, #ARGV do lists[#lists + 1] = {ARGV[i], 0} end
else
  local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'WITHSCORES')
  for i = 1, #stale, 2 do lists[#lists + 1] = {stale[i], tonumber(stale[i + 1])} end
end
local moved = 0
for _, entry in ipairs(lists) do
  local list, n = entry[1], 0
  local source = redis.call('HGET', KEYS[2], list)
  if source then
    while redis.call('LMOVE', list, source, 'LEFT', 'RIGHT') do n = n + 1 end
  end
  moved = moved + n
  if explicit or n > 0 or entry[2] < now - tonumber(ARGV[2]) then
    redis.call('ZREM', KEYS[1], list)
    redis.call('HDEL', KEYS[2], list)
  end
end
return moved
"""

# KEYS: inflight, dead letter. ARGV: item, the reason.
_DEAD = """
redis.call('LREM', KEYS[1], -1, ARGV[1])
redis.call('LPUSH', KEYS[2], cjson.encode({reason = ARGV[2], item = ARGV[1]}))
return 1
"""


class QoS(kredis.QoS):
    """kombu's ack emulation; a fetch already recorded unacked is not recorded twice."""

    def append(self, message, delivery_tag):
        recorded = self.channel.connection.recorded
        if delivery_tag in recorded:
            recorded.discard(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)
            return
        super().append(message, delivery_tag)

    def restore_visible(self, start=0, num=10, interval=10):
        sweep = not (self._vrestore_count % (interval or 1))  # the scan super() is about to run
        super().restore_visible(start=start, num=num, interval=interval)
        if sweep:
            self.channel.restore_inflight()


class Channel(kredis.Channel):
    QoS = QoS

    #: seconds without a heartbeat before a channel's inflight lists are moved back
    inflight_stale_after = 60
    #: seconds between a polling channel's heartbeats (sent before a BLMOVE, when due)
    inflight_heartbeat = 5
    #: seconds without a heartbeat before an empty inflight list's registration is dropped
    inflight_forget_after = 86400

    from_transport_options = kredis.Channel.from_transport_options + (
        "inflight_stale_after", "inflight_heartbeat", "inflight_forget_after")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._inflight_id = uuid.uuid4().hex
        self._inflight_lists: set[str] = set()
        self._beat_at = float("-inf")
        self._blmove = None  # (source key, inflight list) of the pending BLMOVE
        self._unclean: set[str] = set()  # lists a failed read may have left a message in
        self._no_ack: set[str] = set()
        self._warned_brpop = False
        self._record = self._restore = self._dead = self._beat = None

    def _scripts(self, client):
        if self._record is None:
            self._beat = client.register_script(_HEARTBEAT)
            self._record = client.register_script(_RECORD)
            self._restore = client.register_script(_RESTORE)
            self._dead = client.register_script(_DEAD)

    def basic_consume(self, queue, no_ack, *args, **kwargs):
        if no_ack:
            self._no_ack.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def _brpop_start(self, timeout=None):
        queues = self._queue_cycle.consume(len(self.active_queues))
        keys = {self._q_for_pri(q, pri) for pri in self.priority_steps for q in queues}
        if len(keys) != 1 or self.global_keyprefix:
            if queues and not self._warned_brpop:
                self._warned_brpop = True
                log.warning("broker: %d queue keys on one channel; kombu's BRPOP fetch is used, "
                            "and a SIGKILL between its pop and its unacked record loses a message",
                            len(keys))
            self._blmove = None
            return super()._brpop_start(timeout)
        (source,) = keys
        inflight = f"_kombu.inflight.{self._inflight_id}.{source}"
        if inflight in self._unclean:  # the last read failed after its BLMOVE may have run
            self.restore_inflight([inflight])
            self._unclean.discard(inflight)
        self._heartbeat(inflight, source)
        if timeout is None:
            timeout = self.brpop_timeout
        self._blmove = (source, inflight)
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()
        self._unclean.add(inflight)
        self.client.connection.send_command("BLMOVE", source, inflight, "RIGHT", "LEFT", timeout or 0)

    def _heartbeat(self, inflight, source):
        now = monotonic()
        if inflight in self._inflight_lists and now - self._beat_at < self.inflight_heartbeat:
            return
        with self.conn_or_acquire() as client:
            self._scripts(client)
            self._beat(keys=[INFLIGHT_INDEX, INFLIGHT_SOURCE], args=[inflight, source], client=client)
        self._inflight_lists.add(inflight)
        self._beat_at = now

    def _brpop_read(self, **options):
        if self._blmove is None:
            return super()._brpop_read(**options)
        source, inflight = self._blmove
        try:
            try:
                item = self.client.parse_response(self.client.connection, "BLMOVE", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # reconnect on the next poll, as kombu does
                raise
            if not item:
                self._unclean.discard(inflight)
                raise Empty()
            queue = bytes_to_str(source).rsplit(self.sep, 1)[0]
            payload = self._record_fetched(item, inflight, queue)
            self._unclean.discard(inflight)
            if payload is None:
                raise Empty()
            self._queue_cycle.rotate(queue)
            self.connection._deliver(payload, queue)
            return True
        finally:
            self._blmove = None
            self._in_poll = None
            self._flush_brpop_reauth()

    def _record_fetched(self, item, inflight, queue):
        """Move a fetched message from the inflight list to ``unacked`` in one step."""
        with self.conn_or_acquire() as client:
            self._scripts(client)
            try:
                payload = loads(bytes_to_str(item))
                props = payload["properties"]
                tag, info = props["delivery_tag"], props["delivery_info"]
                unacked = dumps([payload, info["exchange"], info["routing_key"]])
                self.Message(payload, channel=self)  # its body decodes (else it would fail every redelivery)
            except Exception as exc:  # noqa: BLE001 - anything unreadable is kept, not retried forever
                reason = f"queue {queue}: not a kombu message ({type(exc).__name__}: {exc})"
                self._dead(keys=[inflight, DEAD_LETTER], args=[item, reason], client=client)
                log.error("broker: %s; kept in %s", reason, DEAD_LETTER)
                return None
            if queue in self._no_ack:
                client.lrem(inflight, -1, item)
                return payload
            if not self._record(keys=[inflight, self.unacked_index_key, self.unacked_key],
                                args=[item, tag, time(), unacked], client=client):
                self._inflight_lists.discard(inflight)  # the sweep unregistered it: beat before the next BLMOVE
                log.warning("broker: message %s was moved back to %s while this channel stalled; "
                            "not delivered here", tag, queue)
                return None
        self.connection.recorded.add(tag)
        return payload

    def restore_inflight(self, lists=()):
        """Move back what stale channels (or, given ``lists``, this one) left in flight."""
        with self.conn_or_acquire() as client:
            self._scripts(client)
            moved = self._restore(keys=[INFLIGHT_INDEX, INFLIGHT_SOURCE],
                                  args=[self.inflight_stale_after, self.inflight_forget_after, *lists],
                                  client=client)
        self._inflight_lists.difference_update(lists)  # unregistered: the next BLMOVE beats first
        if moved:
            log.warning("broker: %d in-flight message(s) of a dead channel moved back to their queue", moved)
        return moved

    def close(self):
        self._closing = True
        if self._in_poll:
            try:
                self._brpop_read()
            except Empty:
                pass
        if self._inflight_lists and not self.closed:
            try:
                self.restore_inflight(sorted(self._inflight_lists))
            except self.connection_errors:
                pass  # the sweep of a live channel restores them once they are stale
        super().close()


def held(client) -> dict:
    """What the broker holds outside the queues, for ``quantpipe status``: messages in inflight
    lists by queue (0 but for a dead worker's, until the sweep) and unreadable entries kept."""
    sources = {k: v.decode() for k, v in client.hgetall(INFLIGHT_SOURCE).items()}
    pipe = client.pipeline(transaction=False)
    for k in sources:
        pipe.llen(k)
    counts: dict[str, int] = {}
    for (k, queue), n in zip(sources.items(), pipe.execute()):
        counts[queue] = counts.get(queue, 0) + int(n)
    return {"inflight": counts, "dead_letter": int(client.llen(DEAD_LETTER))}


class Transport(kredis.Transport):
    Channel = Channel

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: delivery tags a channel recorded unacked at fetch (any channel's QoS may append them)
        self.recorded: set[str] = set()
