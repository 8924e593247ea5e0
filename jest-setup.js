// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';

// React 19's react-dom/server (imported by @grafana/ui) schedules work with MessageChannel,
// which jsdom lacks. Timers are enough for tests and keep no handle open.
if (typeof global.MessageChannel === 'undefined') {
  global.MessageChannel = class MessageChannel {
    constructor() {
      const port1 = { onmessage: null };
      const port2 = { onmessage: null };
      port1.postMessage = (data) => setTimeout(() => port2.onmessage && port2.onmessage({ data }), 0);
      port2.postMessage = (data) => setTimeout(() => port1.onmessage && port1.onmessage({ data }), 0);
      port1.close = port2.close = () => {};
      this.port1 = port1;
      this.port2 = port2;
    }
  };
}

// @grafana/ui's Combobox sizes its menu with canvas text metrics; jsdom has no canvas.
HTMLCanvasElement.prototype.getContext = () => ({
  font: '',
  measureText: (text) => ({ width: String(text).length * 7 }),
});

// Menus and scroll containers observe their size and visibility; jsdom implements neither.
class NoopObserver {
  observe() {}
  unobserve() {}
  disconnect() {}
  takeRecords() {
    return [];
  }
}
global.IntersectionObserver = global.IntersectionObserver || NoopObserver;
global.ResizeObserver = global.ResizeObserver || NoopObserver;
