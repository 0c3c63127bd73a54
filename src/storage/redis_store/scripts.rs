//! The Lua scripts run in Redis, each one atomic step.
//!
//! `PUBLISH` and `CLOSE` take `KEYS[1]` = the channel's meta hash, `KEYS[2]` = its
//! stream, and `ARGV` = the channel's name, the data (empty for a close), the floor
//! (the highest id the calling server has delivered: after Redis lost data, ids go on
//! above it, never back), the most entries to keep (`MAXLEN ~`), and the channel to
//! announce on. Both return `{id, status}`: `status` 0 for a new event, 1 when the
//! channel was already closed (the id is then its close marker's, and nothing was
//! written).
//!
//! Ids are Lua numbers (doubles) inside the script: exact up to 2^53, which no channel
//! reaches.

/// Publishes an event, or refuses it when the channel is closed.
pub const PUBLISH: &str = r#"
local closed = redis.call('HGET', KEYS[1], 'closed')
if closed then
  return {tonumber(closed), 1}
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local floor = tonumber(ARGV[3])
if floor > last then last = floor end
local id = last + 1
redis.call('HSET', KEYS[1], 'last', id)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '0-' .. id, 'd', ARGV[2])
redis.call('PUBLISH', ARGV[5], 'halley1 e ' .. id .. ' ' .. ARGV[1] .. '\n' .. ARGV[2])
return {id, 0}
"#;

/// Closes a channel: its close marker takes the next id. Closing again answers the
/// same id and writes nothing.
pub const CLOSE: &str = r#"
local closed = redis.call('HGET', KEYS[1], 'closed')
if closed then
  return {tonumber(closed), 1}
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local floor = tonumber(ARGV[3])
if floor > last then last = floor end
local id = last + 1
redis.call('HSET', KEYS[1], 'last', id, 'closed', id)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '0-' .. id, 'c', '')
redis.call('PUBLISH', ARGV[5], 'halley1 c ' .. id .. ' ' .. ARGV[1] .. '\n')
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
