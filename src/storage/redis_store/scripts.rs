//! The Lua scripts run in Redis, each one atomic step.
//!
//! `STORE` publishes an event or closes a channel. It takes `KEYS[1]` = the channel's
//! meta hash, `KEYS[2]` = its stream, and `ARGV` = the channel's name, the data
//! (empty for a close), the floor (the highest id the calling server has delivered:
//! after Redis lost data, ids go on above it, never back), the most entries to keep
//! (`MAXLEN ~`), the channel to announce on, the kind (`e` an event, `c` the
//! close marker), and how to announce (`PUBLISH` on one Redis, `SPUBLISH` to the
//! slot's shard channel on a Redis Cluster). It returns `{id, status}`: `status` 0 for a new event, 1 when the
//! channel was already closed (the id is then its close marker's, and nothing was
//! written: a publish is refused, closing again answers the same id).
//!
//! Ids are Lua numbers (doubles) inside the script: exact up to 2^53, which no channel
//! reaches.

/// Stores and announces an event or a close marker under the channel's next id.
pub const STORE: &str = r#"
local closed = redis.call('HGET', KEYS[1], 'closed')
if closed then
  return {tonumber(closed), 1}
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local floor = tonumber(ARGV[3])
if floor > last then last = floor end
local id = last + 1
local kind = ARGV[6]
if kind == 'c' then
  redis.call('HSET', KEYS[1], 'last', id, 'closed', id)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '0-' .. id, 'c', '')
else
  redis.call('HSET', KEYS[1], 'last', id)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '0-' .. id, 'd', ARGV[2])
end
redis.call(ARGV[7], ARGV[5], 'halley1 ' .. kind .. ' ' .. id .. ' ' .. ARGV[1] .. '\n' .. ARGV[2])
return {id, 0}
"#;

/// Raises a channel's counter to at least `ARGV[1]` (`KEYS[1]` its meta hash): what a
/// server does for every channel it has delivered, when it reconnects to a Redis that
/// may have lost data, so that the next id is above all it delivered. Returns the
/// counter after.
pub const RAISE: &str = r#"
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local floor = tonumber(ARGV[1])
if floor > last then
  redis.call('HSET', KEYS[1], 'last', floor)
  return floor
end
return last
"#;
