import { clearLine, createInterface, cursorTo, type Interface } from 'node:readline';
import { Writable } from 'node:stream';

/**
 * The user's side of the client: lines typed (with readline's editing and
 * history on a terminal, plain lines from a pipe), prompts, and output that
 * may arrive while the user is half-way through a line.
 */
export class Terminal {
  readonly tty: boolean;
  private readonly rl: Interface;
  /** Lines read but not yet asked for: piped input arrives faster than it is used. */
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private ended = false;
  /** While a password is typed, readline's echo goes nowhere. */
  private muted = false;
  /** The session is over: no prompt is drawn again under the last words. */
  private finished = false;

  constructor(
    input: NodeJS.ReadStream = process.stdin,
    private readonly output: NodeJS.WriteStream = process.stdout,
  ) {
    this.tty = Boolean(input.isTTY && output.isTTY);
    const echo = new Writable({
      write: (chunk, _encoding, done) => {
        if (!this.muted) output.write(chunk);
        done();
      },
    });
    // readline wraps long lines at the terminal's width and redraws on resize.
    Object.defineProperty(echo, 'columns', { get: () => output.columns });
    output.on('resize', () => echo.emit('resize'));
    this.rl = createInterface({ input, output: echo, terminal: this.tty, historySize: 500, prompt: '' });
    this.rl.on('line', (line) => this.push(line.replace(/\r$/, '')));
    this.rl.on('close', () => {
      this.ended = true;
      this.push(null);
    });
  }

  /** Ctrl-C: readline reports it on a terminal, the process gets a signal from a pipe. */
  onInterrupt(handler: () => void): void {
    this.rl.on('SIGINT', handler);
  }

  /** The next line typed, or null once input has ended (Ctrl-D, end of the pipe). */
  nextLine(): Promise<string | null> {
    if (this.lines.length) return Promise.resolve(this.lines.shift()!);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  /** Stops waiting for a line: the next one typed goes to the next reader. */
  cancelRead(): void {
    this.waiting = null;
  }

  /** Takes back the lines typed ahead and not yet read. */
  discardTyped(): string[] {
    return this.lines.splice(0);
  }

  /** Prompts on the same line and waits for the answer; a secret is not echoed nor kept in history. */
  async ask(prompt: string, options: { secret?: boolean } = {}): Promise<string | null> {
    if (this.tty && !options.secret) {
      // readline redraws its own prompt when the line is edited.
      this.rl.setPrompt(prompt);
      this.rl.prompt();
    } else {
      this.output.write(prompt);
    }
    this.muted = Boolean(options.secret);
    const answer = await this.nextLine();
    this.muted = false;
    this.rl.setPrompt('');
    if (options.secret && this.tty && answer !== null) this.forget(answer);
    // Piped input is not echoed: end the prompt's line so the next output starts on its own.
    if (!this.tty || options.secret) this.output.write('\n');
    return answer;
  }

  /** Shows the "> " prompt on a terminal while commands are read. */
  showPrompt(): void {
    if (!this.tty || this.finished) return;
    this.rl.setPrompt('> ');
    this.rl.prompt();
  }

  /**
   * Prints one or more lines. On a terminal the line being typed is cleared
   * first and drawn again below, so output never lands in the middle of it.
   */
  print(text: string): void {
    if (!this.tty) {
      this.output.write(text + '\n');
      return;
    }
    clearLine(this.output, 0);
    cursorTo(this.output, 0);
    this.output.write(text + '\n');
    if (!this.finished) this.rl.prompt(true);
  }

  /** Stops drawing the prompt: what is printed from now on is the client's last output. */
  finish(): void {
    this.finished = true;
  }

  close(): void {
    this.rl.close();
  }

  private push(line: string | null): void {
    const waiting = this.waiting;
    this.waiting = null;
    if (waiting) waiting(line);
    else if (line !== null) this.lines.push(line);
  }

  /** Takes a just-typed secret back out of readline's history. */
  private forget(secret: string): void {
    const history = (this.rl as unknown as { history?: string[] }).history;
    if (history && history[0] === secret) history.shift();
  }
}
