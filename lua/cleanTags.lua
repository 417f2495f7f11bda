--[[
  cleanTags: invalidates every entry carrying any of the given tags by deleting the tags'
  version keys; the next read of a tag creates a new version, so no stored entry matches.
  One key per tag, whatever the number of entries.

  Key count: variable, the number of tags (no "-N" suffix in the file name for that reason).

  Input:
    KEYS[1..]   tag keys      {prefix}:tag:{tag} (at least one)

    ARGV: none

  Output:
    integer: the number of tag keys that existed and were deleted.
    No error replies of its own.
]]

if #KEYS == 0 then
  return 0
end
return redis.call('UNLINK', unpack(KEYS))
