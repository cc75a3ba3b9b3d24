-- POSTs a different signed WeChat payment notification on every request.
-- args: <bodies file, one body a line> <number of wrk threads> <first position>
-- Thread t sends bodies first+t, first+t+threads, …, so no two requests of a run share a body
-- while the run sends fewer requests than the file holds.

local bodies = {}
local stride

function init(args)
   for line in io.lines(args[1]) do
      bodies[#bodies + 1] = line
   end
   stride = tonumber(args[2])
   position = tonumber(args[3]) + thread_id
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "text/xml"
end

function request()
   local body = bodies[position % #bodies + 1]
   position = position + stride
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   if status == 200 and body:find("<![CDATA[SUCCESS]]>", 1, true) then
      count("success")
   else
      count("refused_" .. status)
   end
end
