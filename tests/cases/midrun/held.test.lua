-- Held until the suite creates $PROVIUM_MIDRUN_MARKER: a consumer joins the
-- event socket while this file is mid-run and emits nothing of its own.
test("held", { spec = "midrun" }, function(t)
  local marker = assert(os.getenv("PROVIUM_MIDRUN_MARKER"), "PROVIUM_MIDRUN_MARKER not set")
  wait_until(function()
    local f = io.open(marker)
    if f then f:close() end
    return f ~= nil
  end, { timeout = "120s", interval = "50ms" })
end)
