/**
 * The `lull dev` demo: a few simulated chats send bursts through the real webhook routes
 * (generic, WhatsApp, Telegram, Twilio, each correctly signed), interleaved, with human-like
 * gaps. The processor then prints one batch per burst, which is the whole point of lull.
 */
import type { DevSecrets } from "./dev-state.ts";
import {
  genericRequest,
  telegramRequest,
  twilioRequest,
  type WebhookRequest,
  whatsappRequest,
} from "./webhook-requests.ts";

/** One message the demo sends, already signed. */
interface DemoStep {
  chat: string;
  text: string;
  request: WebhookRequest;
}

/** Builds the demo script: four chats, one burst each, interleaved in arrival order. */
export function demoSteps(lullUrl: string, publicUrl: string, secrets: DevSecrets): DemoStep[] {
  const run = Date.now().toString(36);
  const nowS = Math.floor(Date.now() / 1000);
  const chats: DemoStep[][] = [
    ["hi", "I want to order", "a large pizza", "with extra cheese please"].map((text, i) => ({
      chat: "whatsapp +966 50 123 4567",
      text,
      request: whatsappRequest(lullUrl, secrets, {
        from: "966501234567",
        id: `wamid.demo-${run}-${i}`,
        text,
        name: "Sara",
        timestampS: nowS + i,
      }),
    })),
    ["hello", "is the shop open today?", "around 6pm"].map((text, i) => ({
      chat: "telegram chat 777000111",
      text,
      request: telegramRequest(lullUrl, secrets, {
        chatId: 777000111,
        updateId: Number.parseInt(run.slice(-6), 36) * 10 + i,
        messageId: 100 + i,
        text,
        dateS: nowS + i,
      }),
    })),
    ["Hey", "my parcel hasn't arrived"].map((text, i) => ({
      chat: "twilio sms +1 555 765 4321",
      text,
      request: twilioRequest(lullUrl, publicUrl, secrets, {
        from: "+15557654321",
        to: "+15550001111",
        sid: `SMdemo${run}${i}`.padEnd(34, "0"),
        text,
      }),
    })),
    ["order #1042", "wrong size", "can I swap it?"].map((text, i) => ({
      chat: "generic support:1042",
      text,
      request: genericRequest(lullUrl, secrets, {
        conversation: "support:1042",
        id: `demo-${run}-${i}`,
        text,
        sender: "customer-1042",
      }),
    })),
  ];
  // Round-robin so the chats' bursts overlap in time, as real traffic does.
  const steps: DemoStep[] = [];
  for (let i = 0; chats.some((c) => i < c.length); i++) {
    for (const chat of chats) {
      const step = chat[i];
      if (step) steps.push(step);
    }
  }
  return steps;
}

/** Gap between two demo messages: a person typing the next line. */
const typingGapMs = 400;

/**
 * Sends the demo, reporting each answer through `report`. Stops early when `signal` aborts.
 * Returns how many messages were accepted (2xx).
 */
export async function runDemo(
  steps: DemoStep[],
  report: (line: { chat: string; text: string; status: number | string }) => void,
  signal: AbortSignal,
): Promise<number> {
  let accepted = 0;
  for (const step of steps) {
    if (signal.aborted) break;
    let status: number | string;
    try {
      const res = await fetch(step.request.url, { ...step.request.init, signal });
      await res.body?.cancel();
      status = res.status;
      if (res.ok) accepted++;
    } catch (err) {
      if (signal.aborted) break;
      status = (err as Error).message;
    }
    report({ chat: step.chat, text: step.text, status });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, typingGapMs);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }
  return accepted;
}
