-- A crowd of mini-program users, each request as a random one of them.
-- args: <users file, "token patient_id" a line> <mode: book | items> <item id> <slot ids, comma-separated>
-- book: POST /api/mp/v1/orders for a random slot; items: GET /api/mp/v1/items (read-only baseline).

local users = {}
local slots = {}
local mode, item_id

function init(args)
   for line in io.lines(args[1]) do
      local token, patient_id = line:match("^(%S+) (%d+)$")
      users[#users + 1] = {"Bearer " .. token, patient_id}
   end
   mode, item_id = args[2], args[3]
   for slot_id in (args[4] or ""):gmatch("%d+") do
      slots[#slots + 1] = slot_id
   end
   math.randomseed(os.time() * 1000 + thread_id)
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   local user = users[math.random(#users)]
   wrk.headers["Authorization"] = user[1]
   position = position + 1
   if mode == "items" then
      return wrk.format("GET", "/api/mp/v1/items", nil, nil)
   end
   local body = string.format('{"type": "booking", "channel": "wechat", "item_id": %s, "slot_id": %s, "patient_id": %s}',
                              item_id, slots[math.random(#slots)], user[2])
   return wrk.format("POST", "/api/mp/v1/orders", nil, body)
end

function response(status, headers, body)
   if status == 201 then
      count("booked")
   elseif status == 409 and body:find("slot_sold_out", 1, true) then
      count("sold_out")
   else
      count("status_" .. status)
   end
end
