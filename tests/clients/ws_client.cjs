// The TypeScript SDK's WebSocketClientTransport (subprotocol `mcp`) against vMCP's WebSocket front:
// list, call, read and get. usage: node ws_client.cjs WS_URL REQUESTS_JSON  (NODE_PATH = node_modules)
// Prints one JSON object (see conftest.check).
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { WebSocketClientTransport } = require("@modelcontextprotocol/sdk/client/websocket.js");

async function main() {
  const [url, planText] = process.argv.slice(2);
  const plan = JSON.parse(planText);
  const client = new Client({ name: "vmcp-ws-test", version: "1.0.0" });
  await client.connect(new WebSocketClientTransport(new URL(url)));
  const out = { tools: [], calls: {}, prompts: {}, reads: {} };
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    out.tools.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  for (const [name, args] of Object.entries(plan.calls)) {
    const r = await client.callTool({ name, arguments: args });
    out.calls[name] = r.content[0].text;
  }
  for (const [name, args] of Object.entries(plan.prompts)) {
    const p = await client.getPrompt({ name, arguments: args });
    out.prompts[name] = p.messages[0].content.text;
  }
  for (const uri of plan.reads) {
    const r = await client.readResource({ uri });
    out.reads[uri] = r.contents[0].text;
  }
  await client.close();
  console.log(JSON.stringify(out));
}

const timer = setTimeout(() => { console.error("timed out"); process.exit(3); }, 60000);
main().then(() => clearTimeout(timer), (e) => { console.error(e && e.stack || e); process.exit(1); });
