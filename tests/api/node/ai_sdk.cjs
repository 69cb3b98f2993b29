// The Vercel AI SDK's default OpenAI model (`openai(id)`: the Responses API) against Toolhub.
// Usage: node ai_sdk.cjs <base url ending in /v1> <api key>; prints one JSON object with what each call gave.
// Run with NODE_PATH pointing at tests/node/node_modules.
const { generateText, streamText, jsonSchema, stepCountIs, tool } = require("ai");
const { createOpenAI } = require("@ai-sdk/openai");

async function main() {
  const [baseURL, apiKey] = process.argv.slice(2);
  const openai = createOpenAI({ baseURL, apiKey });
  const out = {};

  const plain = await generateText({ model: openai("text"), prompt: "hello", maxRetries: 0 });
  out.plain = { text: plain.text, finishReason: plain.finishReason, usage: plain.usage, id: plain.response.id };

  const streamed = streamText({ model: openai("text"), prompt: "streamed", maxRetries: 0 });
  out.streamed = { text: await streamed.text, finishReason: await streamed.finishReason };

  const exec_command = tool({
    description: "Run a shell command",
    inputSchema: jsonSchema({ type: "object", properties: { cmd: { type: "string" } }, required: ["cmd"] }),
    execute: async ({ cmd }) => `ran ${cmd}`,
  });
  const agent = await generateText({
    model: openai("caller"), prompt: "run it", tools: { exec_command }, stopWhen: stepCountIs(3), maxRetries: 0,
  });
  out.tools = {
    text: agent.text, steps: agent.steps.length,
    calls: agent.steps.flatMap((s) => s.toolCalls.map((c) => [c.toolName, c.input])),
  };

  const streamedAgent = streamText({
    model: openai("caller"), prompt: "run it", tools: { exec_command }, stopWhen: stepCountIs(3), maxRetries: 0,
  });
  out.streamedTools = { text: await streamedAgent.text, steps: (await streamedAgent.steps).length };

  // A second turn built from the first one's messages: the SDK refers to stored items by id (item_reference).
  const first = await generateText({ model: openai("text"), prompt: "my name is Ada", maxRetries: 0 });
  const messages = [{ role: "user", content: "my name is Ada" }, ...first.response.messages,
    { role: "user", content: "what is my name?" }];
  const second = await generateText({ model: openai("text"), messages, maxRetries: 0 });
  out.conversation = { text: second.text };

  try {
    await generateText({ model: openai("no-such-model"), prompt: "hi", maxRetries: 0 });
    out.error = null;
  } catch (error) {
    out.error = { name: error.name, statusCode: error.statusCode, message: error.message };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
