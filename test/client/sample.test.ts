import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../support/server.js';
import { loginCli, stopClients, type Cli } from './cli.js';

/*
 * The assignment's sample interaction (SPEC sections 2, 3 and 5), three
 * users at three real client processes, each step checked on every screen
 * it should (and should not) reach. The steps build on each other, so they
 * are one test.
 */
describe('the sample interaction with three users', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer({ positional: ['60', '120'] });
  });

  afterAll(async () => {
    await stopClients();
    await server?.stop();
  });

  it('runs from login to logout as the assignment shows', async () => {
    const yoda = await loginCli(server.tcpPort, 'yoda', 'wise');
    const hans = await loginCli(server.tcpPort, 'hans', 'falcon');
    await yoda.waitForLine('hans logged in');
    const luke = await loginCli(server.tcpPort, 'luke', 'sunrise');
    await yoda.waitForLine('luke logged in');
    await hans.waitForLine('luke logged in');

    // whoelse: the others, one per line
    yoda.type('whoelse');
    await yoda.waitForLine('hans');
    await yoda.waitForLine('luke');
    expect(yoda.count('yoda')).toBe(0);

    // an invalid command
    yoda.type('whatsup');
    await yoda.waitForLine('Error. Invalid command');

    // a message, shown as "<sender>: <text>"
    yoda.type('message hans Hey Dude');
    await hans.waitForLine('yoda: Hey Dude');

    // an invalid user
    yoda.type('message bob Hi');
    await yoda.waitForLine('Error. Invalid user');

    // hans blocks yoda: yoda is not told
    hans.type('block yoda');
    await hans.waitForLine('yoda is blocked');

    // a broadcast reaches luke, not hans, and yoda learns some were skipped
    yoda.type('broadcast Hello everyone');
    await yoda.waitForLine('Your message could not be delivered to some recipients');
    await luke.waitForLine('yoda: Hello everyone');

    // a message to someone who blocked you
    yoda.type('message hans Are you there?');
    await yoda.waitForLine('Your message could not be delivered as the recipient has blocked you');

    // block self
    hans.type('block hans');
    await hans.waitForLine('Error. Cannot block self');

    // unblock, and messages flow again
    hans.type('unblock yoda');
    await hans.waitForLine('yoda is unblocked');
    yoda.type('message hans Welcome back');
    await hans.waitForLine('yoda: Welcome back');
    expect(hans.count('yoda: Hello everyone')).toBe(0);
    expect(hans.count('yoda: Are you there?')).toBe(0);

    // private before startprivate
    yoda.type('private luke Psst');
    await yoda.waitForLine('Error. Private messaging to luke not enabled');

    // startprivate with consent
    yoda.type('startprivate luke');
    await yoda.waitForLine('Private messaging request sent to luke');
    await luke.waitForLine('yoda would like to chat privately. Accept? (y/n)');
    luke.type('y');
    await luke.waitForLine('Start private messaging with yoda');
    await yoda.waitForLine('Start private messaging with luke');

    // private both ways
    yoda.type('private luke Hey luke, just between us');
    await luke.waitForLine('yoda(private): Hey luke, just between us');
    luke.type('private yoda Sure, master');
    await yoda.waitForLine('luke(private): Sure, master');

    // stopprivate: both sides know, and private is refused again
    yoda.type('stopprivate luke');
    await yoda.waitForLine('Stopped private messaging with luke');
    await luke.waitForLine('yoda stopped private messaging');
    luke.type('private yoda Still there?');
    await luke.waitForLine('Error. Private messaging to yoda not enabled');
    yoda.type('stopprivate luke');
    await yoda.waitForLine('Error. Private messaging to luke not enabled');

    // logout: the client exits cleanly and the others see the presence
    luke.type('logout');
    await luke.waitForLine('You have been logged out');
    expect(await luke.waitForExit()).toBe(0);
    // Said once: by the reply; the session_end after it only closes.
    expect(luke.count('You have been logged out')).toBe(1);
    await yoda.waitForLine('luke logged out');
    await hans.waitForLine('luke logged out');

    // private texts never reached anyone else
    for (const cli of [hans, yoda] as Cli[]) {
      expect(cli.output()).not.toContain('Hey luke, just between us');
    }
    expect(hans.output()).not.toContain('Sure, master');
    // every line showed once: nothing doubled on the way
    expect(hans.count('yoda: Hey Dude')).toBe(1);
    expect(luke.count('yoda: Hello everyone')).toBe(1);
  });
});
